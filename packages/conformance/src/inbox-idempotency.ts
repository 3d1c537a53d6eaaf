import assert from "node:assert/strict";
import type { InboxAppendResult, InboxStore, UserKey } from "@truss/core";
import { sleep, uniqueId } from "./fixtures.js";
import { appendSequence, assertStrictlyIncreasing, freshUser, type InboxCases } from "./inbox-fixtures.js";

const TTL_CASE_TIMEOUT_MS = 15_000;
/** Racing appends with one key; spread over two handles when the backend is shared. */
const RACERS = 20;

/** Appends with an idempotency key. */
function appendOnce(inbox: InboxStore, user: UserKey, key: string, data: unknown, event = "expense:approved"): Promise<InboxAppendResult> {
  return inbox.append(user, event, data, { idempotencyKey: key });
}

/**
 * Cases for `append` with an idempotency key: a repeat for the same user
 * within the TTL stores nothing and resolves with the first message, even
 * when the repeats race (on two nodes, with a shared backend); keys of
 * different users and companies never meet; a key is forgotten after the TTL
 * and past the per-user bound of 10 × `maxLength` keys.
 */
export function registerInboxIdempotencyCases(cases: InboxCases, sharedBackend: boolean): void {
  cases.withInstance("a repeat with the same key stores nothing and resolves with the first message", async (inbox) => {
    const user = freshUser();
    const key = uniqueId("key");
    const first = await appendOnce(inbox, user, key, { amount: 10 });
    assert.equal(first.duplicate, false);
    const repeat = await appendOnce(inbox, user, key, { amount: 99 }, "expense:rejected");
    assert.equal(repeat.duplicate, true);
    // Same id, ts, event and data: the repeat's own event and data are not stored.
    assert.deepEqual(repeat.message, first.message);
    assert.deepEqual(await inbox.read(user, null, 10), [first.message]);
    assert.deepEqual((await appendOnce(inbox, user, key, { amount: 10 })).message, first.message);
    assert.equal((await inbox.read(user, null, 10)).length, 1);
  });

  cases.withInstance("appends without a key, or with different keys, are all stored", async (inbox) => {
    const user = freshUser();
    const plain = [await inbox.append(user, "expense:approved", { amount: 10 }), await inbox.append(user, "expense:approved", { amount: 10 })];
    const keyed = [await appendOnce(inbox, user, uniqueId("key"), { amount: 10 }), await appendOnce(inbox, user, uniqueId("key"), { amount: 10 })];
    assert.deepEqual([...plain, ...keyed].map((result) => result.duplicate), [false, false, false, false]);
    const read = await inbox.read(user, null, 10);
    assert.deepEqual(read, [...plain, ...keyed].map((result) => result.message));
    assertStrictlyIncreasing(read.map((message) => message.id));
  });

  cases.withInstance("the same key for another user or another company is another key", async (inbox) => {
    const key = uniqueId("key");
    const ann = freshUser();
    const bob = freshUser({ companyId: ann.companyId });
    const annElsewhere = freshUser({ userId: ann.userId });
    const results = [
      await appendOnce(inbox, ann, key, { to: "ann" }),
      await appendOnce(inbox, bob, key, { to: "bob" }),
      await appendOnce(inbox, annElsewhere, key, { to: "ann elsewhere" }),
    ];
    assert.deepEqual(results.map((result) => result.duplicate), [false, false, false]);
    for (const [user, first] of [
      [ann, results[0]!],
      [bob, results[1]!],
      [annElsewhere, results[2]!],
    ] as const) {
      const repeat = await appendOnce(inbox, user, key, { to: "again" });
      assert.equal(repeat.duplicate, true);
      assert.deepEqual(repeat.message, first.message);
      assert.deepEqual(await inbox.read(user, null, 10), [first.message]);
    }
  });

  const racingName = sharedBackend
    ? `${RACERS} concurrent appends with one key through two nodes store one message`
    : `${RACERS} concurrent appends with one key store one message`;
  const racingAppends = async (handles: InboxStore[]) => {
    const user = freshUser();
    const key = uniqueId("key");
    const results = await Promise.all(
      Array.from({ length: RACERS }, (_, index) => appendOnce(handles[index % handles.length]!, user, key, { index })),
    );
    const stored = results.filter((result) => !result.duplicate);
    assert.equal(stored.length, 1, `exactly one append stores, not ${stored.length}`);
    for (const result of results) assert.deepEqual(result.message, stored[0]!.message);
    for (const handle of handles) assert.deepEqual(await handle.read(user, null, 100), [stored[0]!.message]);
  };
  if (sharedBackend) cases.withTwoHandles(racingName, (nodeA, nodeB) => racingAppends([nodeA, nodeB]));
  else cases.withInstance(racingName, (inbox) => racingAppends([inbox]));

  cases.withInstance(
    "after the TTL a repeat is a new message",
    async (inbox) => {
      const user = freshUser();
      const key = uniqueId("key");
      const first = await appendOnce(inbox, user, key, { attempt: 1 });
      await sleep(450);
      const later = await appendOnce(inbox, user, key, { attempt: 2 });
      assert.equal(later.duplicate, false);
      assertStrictlyIncreasing([first.message.id, later.message.id]);
      assert.deepEqual(later.message.data, { attempt: 2 });
      assert.deepEqual(await inbox.read(user, null, 10), [later.message]);
      // The new message is now what the key answers with.
      assert.deepEqual((await appendOnce(inbox, user, key, { attempt: 3 })).message, later.message);
    },
    { factoryOptions: { ttlMs: 300 }, timeoutMs: TTL_CASE_TIMEOUT_MS },
  );

  cases.withInstance(
    "a repeat whose first message the cap dropped stores nothing and keeps the first id and ts",
    async (inbox) => {
      const user = freshUser();
      const key = uniqueId("key");
      const first = await appendOnce(inbox, user, key, { attempt: 1 });
      const later = await appendSequence(inbox, user, 2);
      assert.deepEqual(await inbox.read(user, null, 10), later, "the cap dropped the first message");
      const repeat = await appendOnce(inbox, user, key, { attempt: 2 }, "expense:rejected");
      assert.equal(repeat.duplicate, true);
      assert.deepEqual(repeat.message, { id: first.message.id, ts: first.message.ts, event: "expense:rejected", data: { attempt: 2 } });
      assert.deepEqual(await inbox.read(user, null, 10), later);
    },
    { factoryOptions: { maxLength: 2 } },
  );

  cases.withInstance(
    "a user's keys are bounded by 10 × maxLength, the oldest forgotten first",
    async (inbox) => {
      const user = freshUser();
      const keys = Array.from({ length: 21 }, (_, index) => uniqueId(`key-${index}`));
      const firsts = [];
      for (const key of keys) firsts.push(await appendOnce(inbox, user, key, { key }));
      // maxLength 2: the newest 20 keys are remembered.
      for (let index = keys.length - 1; index >= 1; index -= 1) {
        const repeat = await appendOnce(inbox, user, keys[index]!, { again: true });
        assert.equal(repeat.duplicate, true, `key ${index} is remembered`);
        assert.equal(repeat.message.id, firsts[index]!.message.id);
      }
      const forgotten = await appendOnce(inbox, user, keys[0]!, { again: true });
      assert.equal(forgotten.duplicate, false, "the oldest key was forgotten");
      assert.deepEqual(forgotten.message.data, { again: true });
    },
    { factoryOptions: { maxLength: 2 } },
  );

  cases.withInstance("keys may hold any well-formed text up to 200 characters", async (inbox) => {
    const user = freshUser();
    // 200 code points, 400 UTF-16 units.
    const astral = "🏗".repeat(200);
    for (const key of ["a", ":{}%/| é", "x".repeat(200), astral, "__proto__", "constructor"]) {
      const first = await appendOnce(inbox, user, key, { key });
      assert.equal(first.duplicate, false, `${JSON.stringify(key.slice(0, 20))} is a new key`);
      const repeat = await appendOnce(inbox, user, key, { again: true });
      assert.deepEqual(repeat, { message: first.message, duplicate: true });
    }
    // Keys are compared exactly: these are distinct.
    const composed = await appendOnce(inbox, user, "caf\u00e9", {});
    const decomposed = await appendOnce(inbox, user, "cafe\u0301", {});
    assert.deepEqual([composed.duplicate, decomposed.duplicate], [false, false]);
  });

  cases.withInstance("a malformed key is refused with a TypeError and nothing is stored", async (inbox) => {
    const user = freshUser();
    const malformed: unknown[] = ["", "\ud800", "a\udc00b", "x".repeat(201), "🏗".repeat(201), 42, null, {}];
    for (const key of malformed) {
      await assert.rejects(
        inbox.append(user, "expense:approved", {}, { idempotencyKey: key as string }),
        TypeError,
        `${typeof key === "string" ? `${key.length} units` : String(key)} is refused`,
      );
    }
    assert.deepEqual(await inbox.read(user, null, 10), []);
  });
}
