import assert from "node:assert/strict";
import type { CompareAndSetResult, DocumentStore, MutationRef } from "@truss/core";
import { commitApart, committed, type DocumentCases, freshKey, freshMutation } from "./documents-fixtures.js";
import { registerDocumentMutationWriterCases } from "./documents-mutation-writers.js";
import { sleep, uniqueId } from "./fixtures.js";

/** The `maxMutations` the window case asks for. */
const MAX_MUTATIONS = 3;
/** The `mutationTtlMs` the TTL cases ask for: short, so they wait it out in real time. */
const MUTATION_TTL_MS = 150;
/** Writers racing with one mutation id. */
const RACERS = 20;

/**
 * Cases for mutation ids: a write that carries one commits at most once,
 * however often it is repeated and however many nodes receive it at once;
 * a mutation older than what the store remembers (`maxMutations` per
 * writer of a document, `mutationTtlMs`) is reported `expired`, never `new`.
 */
export function registerDocumentMutationCases(cases: DocumentCases, sharedBackend: boolean): void {
  cases.withInstance("a mutation never seen is new, and asking changes nothing", async (store) => {
    const absent = freshKey();
    assert.deepEqual(await store.mutation(absent, freshMutation()), { state: "new" });
    assert.equal(await store.get(absent), null, "asking about a mutation creates no document");

    const existing = freshKey();
    const created = committed(await store.compareAndSet(existing, 0, { name: "Depot" }, "user-ann", freshMutation()));
    assert.deepEqual(await store.mutation(existing, freshMutation()), { state: "new" });
    assert.deepEqual(await store.get(existing), created);
  });

  cases.withInstance("a mutation commits once; repeating it commits nothing and names its version", async (store) => {
    const key = freshKey();
    const mutation = freshMutation();
    const first = committed(await store.compareAndSet(key, 0, { status: "planned" }, "user-ann", mutation));
    assert.equal(first.version, 1);
    assert.deepEqual(await store.mutation(key, mutation), { state: "committed", version: 1 });

    // Repeated on the version it was made on and on the now-current one: neither is compared.
    for (const expectedVersion of [0, 1]) {
      assert.deepEqual(await store.compareAndSet(key, expectedVersion, { status: "again" }, "user-ann", mutation), {
        ok: false,
        current: first,
        mutation: { state: "committed", version: 1 },
      });
    }

    // After another write, a repeat still names the version the mutation made, with the latest as current.
    const second = committed(await store.compareAndSet(key, 1, { status: "active" }, "user-bob"));
    for (const expectedVersion of [0, 1, 2]) {
      assert.deepEqual(await store.compareAndSet(key, expectedVersion, { status: "again" }, "user-ann", mutation), {
        ok: false,
        current: second,
        mutation: { state: "committed", version: 1 },
      });
    }
    assert.deepEqual(await store.mutation(key, mutation), { state: "committed", version: 1 });
    assert.deepEqual(await store.get(key), second);
    assert.deepEqual(await store.history(key, 10), [second, first], "the mutation committed exactly once");
  });

  cases.withInstance("a compare-and-set that fails on its version records nothing of its mutation", async (store) => {
    const key = freshKey();
    const mutation = freshMutation();
    // On a document that does not exist yet.
    const missing = await store.compareAndSet(key, 1, { status: "ghost" }, "user-ann", mutation);
    assert.equal(missing.ok, false);
    assert.equal(missing.ok ? undefined : missing.current, null);
    assert.equal(missing.ok ? undefined : missing.mutation, undefined, "a new mutation is not reported");
    assert.deepEqual(await store.mutation(key, mutation), { state: "new" });

    // On a stale version of one that does.
    const created = committed(await store.compareAndSet(key, 0, { status: "planned" }, "user-bob"));
    const stale = await store.compareAndSet(key, 0, { status: "stale" }, "user-ann", mutation);
    assert.equal(stale.ok, false);
    assert.deepEqual(stale.ok ? undefined : stale.current, created);
    assert.equal(stale.ok ? undefined : stale.mutation, undefined, "a new mutation is not reported");
    assert.deepEqual(await store.mutation(key, mutation), { state: "new" });

    // The same mutation, rebased on the current version, then commits.
    const rebased = committed(await store.compareAndSet(key, 1, { status: "rebased" }, "user-ann", mutation));
    assert.equal(rebased.version, 2);
    assert.deepEqual(await store.mutation(key, mutation), { state: "committed", version: 2 });
  });

  cases.withInstance("mutation ids are per document: the same id elsewhere is new", async (store) => {
    const key = freshKey();
    const mutation = freshMutation();
    committed(await store.compareAndSet(key, 0, { owner: "acme" }, "user-ann", mutation));
    const elsewhere = [
      { ...key, id: uniqueId("project") },
      { ...key, type: "expense" },
      { ...key, companyId: uniqueId("company") },
    ];
    for (const other of elsewhere) {
      assert.deepEqual(await store.mutation(other, mutation), { state: "new" }, JSON.stringify(other));
      const created = committed(await store.compareAndSet(other, 0, { owner: "other" }, "user-ann", mutation));
      assert.equal(created.version, 1);
      assert.deepEqual(await store.mutation(other, mutation), { state: "committed", version: 1 });
    }
    assert.deepEqual(await store.mutation(key, mutation), { state: "committed", version: 1 });
    assert.equal((await store.history(key, 10)).length, 1);
  });

  cases.withInstance(
    `a document remembers a writer's last ${MAX_MUTATIONS} mutations; older ones are expired, never new`,
    async (store) => {
      const key = freshKey();
      const mutations = await commitApart(store, key, "user-ann", 5);
      const [m1, m2, m3, m4, m5] = mutations as [MutationRef, MutationRef, MutationRef, MutationRef, MutationRef];
      assert.deepEqual(await store.mutation(key, m1), { state: "expired" });
      assert.deepEqual(await store.mutation(key, m2), { state: "expired" });
      assert.deepEqual(await store.mutation(key, m3), { state: "committed", version: 3 });
      assert.deepEqual(await store.mutation(key, m4), { state: "committed", version: 4 });
      assert.deepEqual(await store.mutation(key, m5), { state: "committed", version: 5 });

      // Never seen, but made before a record the cap pushed out: it may have been that one.
      assert.deepEqual(await store.mutation(key, { ...m2, id: uniqueId("mutation") }), { state: "expired" });
      // Made after every commit: it cannot have been pushed out.
      await sleep(5);
      assert.deepEqual(await store.mutation(key, freshMutation()), { state: "new" });

      const latest = await store.get(key);
      assert.equal(latest?.version, 5);
      assert.deepEqual(await store.compareAndSet(key, 5, { revision: "again" }, "user-ann", m1), {
        ok: false,
        current: latest,
        mutation: { state: "expired" },
      });
      assert.deepEqual(await store.compareAndSet(key, 5, { revision: "again" }, "user-ann", m3), {
        ok: false,
        current: latest,
        mutation: { state: "committed", version: 3 },
      });
      assert.deepEqual(await store.get(key), latest, "neither repeat committed");
      assert.equal((await store.history(key, 10)).length, 5);
    },
    { factoryOptions: { maxMutations: MAX_MUTATIONS } },
  );

  cases.withInstance(
    "a mutation older than mutationTtlMs is expired and commits nothing",
    async (store) => {
      const key = freshKey();
      const old = freshMutation(2 * MUTATION_TTL_MS);
      assert.deepEqual(await store.mutation(key, old), { state: "expired" });
      assert.deepEqual(await store.compareAndSet(key, 0, { status: "late" }, "user-ann", old), {
        ok: false,
        current: null,
        mutation: { state: "expired" },
      });
      assert.equal(await store.get(key), null);
      assert.deepEqual(await store.mutation(key, old), { state: "expired" }, "a refused mutation is not recorded");
    },
    { factoryOptions: { mutationTtlMs: MUTATION_TTL_MS } },
  );

  cases.withInstance(
    "a committed mutation is never new again once its TTL has passed",
    async (store) => {
      const key = freshKey();
      const mutation = freshMutation();
      committed(await store.compareAndSet(key, 0, { status: "planned" }, "user-ann", mutation));
      await sleep(MUTATION_TTL_MS + 100);
      // Another commit, so a store that forgets on commit has forgotten by now.
      const second = committed(await store.compareAndSet(key, 1, { status: "active" }, "user-bob", freshMutation(0, "user-bob")));
      const state = await store.mutation(key, mutation);
      // Either answer is safe: committed (still on record) or expired (forgotten, too old to tell).
      assert.notEqual(state.state, "new", `the mutation is ${JSON.stringify(state)}`);
      if (state.state === "committed") assert.equal(state.version, 1);

      for (const expectedVersion of [0, 2]) {
        const repeat = await store.compareAndSet(key, expectedVersion, { status: "again" }, "user-ann", mutation);
        assert.equal(repeat.ok, false, `repeat on version ${expectedVersion} commits nothing`);
        assert.deepEqual(repeat.ok ? undefined : repeat.current, second);
        assert.ok(repeat.ok || repeat.mutation, "the repeat is refused for its mutation, not its version");
      }
      assert.deepEqual(await store.get(key), second);
      assert.equal((await store.history(key, 10)).length, 2);
    },
    { factoryOptions: { mutationTtlMs: MUTATION_TTL_MS } },
  );

  registerDocumentMutationWriterCases(cases);
  registerMutationRaceCases(cases, sharedBackend);
}

/**
 * Two nodes (or one, without a shared backend) receive the same mutation at
 * once, as they do when a client resends after a reconnect.
 */
function registerMutationRaceCases(cases: DocumentCases, sharedBackend: boolean): void {
  const register = (name: string, body: (handles: DocumentStore[]) => Promise<void>) => {
    if (sharedBackend) cases.withTwoHandles(`${name} (across two nodes)`, (nodeA, nodeB) => body([nodeA, nodeB]));
    else cases.withInstance(name, (store) => body([store]));
  };

  register(`of ${RACERS} concurrent writers with one mutation id exactly one commits`, async (handles) => {
    const key = freshKey();
    const handle = (writer: number) => handles[writer % handles.length]!;

    // All on the same expected version.
    const first = freshMutation();
    const onCreate = await Promise.all(
      Array.from({ length: RACERS }, (_, writer) => handle(writer).compareAndSet(key, 0, { writer }, `user-${writer}`, first)),
    );
    const created = soleWinner(onCreate);
    assert.equal(created.version, 1);
    for (const result of onCreate) {
      // Every loser was checked after the winner committed, or it would have won; so it saw the mutation.
      if (!result.ok) assert.deepEqual(result, { ok: false, current: created, mutation: { state: "committed", version: 1 } });
    }

    // Each re-reads the latest version first, so some expect the version the winner made.
    const second = freshMutation();
    const onLatest = await Promise.all(
      Array.from({ length: RACERS }, async (_, writer) => {
        const latest = await handle(writer).get(key);
        return handle(writer).compareAndSet(key, latest?.version ?? 0, { writer, round: 2 }, `user-${writer}`, second);
      }),
    );
    const updated = soleWinner(onLatest);
    assert.equal(updated.version, 2);
    for (const result of onLatest) {
      if (!result.ok) assert.deepEqual(result, { ok: false, current: updated, mutation: { state: "committed", version: 2 } });
    }

    for (const node of handles) {
      assert.deepEqual(await node.mutation(key, first), { state: "committed", version: 1 });
      assert.deepEqual(await node.mutation(key, second), { state: "committed", version: 2 });
    }
    assert.deepEqual(await handles[0]!.history(key, 100), [updated, created], "each mutation committed once");
  });
}

function soleWinner(results: readonly CompareAndSetResult[]) {
  const winners = results.flatMap((result) => (result.ok ? [result.document] : []));
  assert.equal(winners.length, 1, `exactly one writer commits, not ${winners.length}`);
  return winners[0]!;
}
