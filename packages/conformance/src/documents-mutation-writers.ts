import assert from "node:assert/strict";
import { MUTATION_HORIZONS_PER_WRITER, type MutationRef } from "@truss/core";
import { commitApart, committed, type DocumentCases, freshKey, freshMutation } from "./documents-fixtures.js";
import { sleep } from "./fixtures.js";

/** The `maxMutations` the per-writer case asks for. */
const MAX_MUTATIONS = 3;
/** The `maxMutationWriters` the eviction cases ask for. */
const MAX_WRITERS = 2;

/**
 * Cases for the per-writer window: a writer's records are capped on their
 * own, so one user's commits never expire another user's pending write;
 * past `maxMutationWriters` writers the least recently committed is
 * forgotten whole, and then only its own earlier mutations expire.
 */
export function registerDocumentMutationWriterCases(cases: DocumentCases): void {
  cases.withInstance(
    `one writer's ${MAX_MUTATIONS + 1} commits push out only its own records, never another writer's`,
    async (store) => {
      const key = freshKey();
      const bobsCommitted = freshMutation(0, "user-bob");
      committed(await store.compareAndSet(key, 0, { notes: "bob" }, "user-bob", bobsCommitted));
      // Made offline before any of Ann's commits, sent after all of them.
      const bobsPending = freshMutation(0, "user-bob");
      const anns = await commitApart(store, key, "user-ann", MAX_MUTATIONS + 1);

      assert.deepEqual(await store.mutation(key, anns[0]!), { state: "expired" }, "Ann's own cap pushed out her first");
      assert.deepEqual(await store.mutation(key, anns.at(-1)!), { state: "committed", version: MAX_MUTATIONS + 2 });
      assert.deepEqual(await store.mutation(key, bobsCommitted), { state: "committed", version: 1 }, "Bob's record is still there");
      assert.deepEqual(await store.mutation(key, bobsPending), { state: "new" }, "Bob's pending write is not expired");
      const latest = MAX_MUTATIONS + 2;
      const sent = committed(await store.compareAndSet(key, latest, { notes: "bob, offline" }, "user-bob", bobsPending));
      assert.equal(sent.version, latest + 1);
    },
    { factoryOptions: { maxMutations: MAX_MUTATIONS } },
  );

  cases.withInstance(
    `past ${MAX_WRITERS} writers the least recently committed is forgotten whole: its old mutations expire, nobody else's`,
    async (store) => {
      const key = freshKey();
      // Dan's write was made before everything else and is sent last; Dan never committed before.
      const dansPending = freshMutation(0, "user-dan");
      const [ann] = await commitApart(store, key, "user-ann", 1);
      const annCommittedAt = (await store.get(key))!.updatedAt;
      // Made after her commit, while offline: she had no record of it, so it must stay new.
      const annsPending: MutationRef = { ...freshMutation(0, "user-ann"), madeAt: annCommittedAt + 1 };
      await commitApart(store, key, "user-bob", 1);
      await commitApart(store, key, "user-cat", 1);

      assert.deepEqual(await store.mutation(key, ann!), { state: "expired" }, "Ann's records went with her: her commit is never new");
      assert.deepEqual(await store.mutation(key, annsPending), { state: "new" }, "only Ann's mutations up to her last commit expire");
      assert.deepEqual(await store.mutation(key, dansPending), { state: "new" }, "a writer never forgotten is not expired");
      committed(await store.compareAndSet(key, 3, { writer: "dan" }, "user-dan", dansPending));

      // Back again, Ann keeps her horizon: her forgotten commit is still not new.
      await commitApart(store, key, "user-ann", 1);
      assert.deepEqual(await store.mutation(key, ann!), { state: "expired" });
      assert.deepEqual(await store.compareAndSet(key, 5, { writer: "ann, again" }, "user-ann", ann!), {
        ok: false,
        current: await store.get(key),
        mutation: { state: "expired" },
      });
    },
    { factoryOptions: { maxMutationWriters: MAX_WRITERS } },
  );

  // With maxMutationWriters 1, a document keeps this many horizons.
  const horizons = MUTATION_HORIZONS_PER_WRITER;
  cases.withInstance(
    `past ${horizons} forgotten writers a committed mutation of the oldest is still expired, and a new one is new`,
    async (store) => {
      const key = freshKey();
      const [first] = await commitApart(store, key, "user-0", 1);
      for (let writer = 1; writer <= horizons + 1; writer += 1) await commitApart(store, key, `user-${writer}`, 1);
      assert.deepEqual(await store.mutation(key, first!), { state: "expired" }, "forgetting its horizon never makes a commit new");
      await sleep(2);
      assert.deepEqual(await store.mutation(key, freshMutation(0, "user-0")), { state: "new" });
      assert.deepEqual(await store.mutation(key, freshMutation(0, "user-new")), { state: "new" });
    },
    { factoryOptions: { maxMutationWriters: 1 } },
  );
}
