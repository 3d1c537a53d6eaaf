import assert from "node:assert/strict";
import type { StreamAppendResult, StreamKey, StreamStore } from "@truss/core";
import { sleep, uniqueId } from "./fixtures.js";
import { appendSequence, freshStream, offsetRange, offsetsOf, type StreamCases } from "./streams-fixtures.js";

const TTL_CASE_TIMEOUT_MS = 15_000;
/** Racing appends with one key; spread over two handles when the backend is shared. */
const RACERS = 20;

/** Appends with an idempotency key. */
function appendOnce(store: StreamStore, key: StreamKey, idempotencyKey: string, data: unknown, event = "project:updated"): Promise<StreamAppendResult> {
  return store.append(key, event, data, { idempotencyKey });
}

/**
 * Cases for `append` with an idempotency key: a repeat on the same stream
 * within the TTL stores nothing and resolves with the first entry's epoch
 * and offset, even when the repeats race (on two nodes, with a shared
 * backend); keys of other streams and companies never meet; a key is
 * forgotten after the TTL and past the per-stream bound of 10 × `size` keys.
 */
export function registerStreamIdempotencyCases(cases: StreamCases, sharedBackend: boolean): void {
  cases.withInstance("a repeat with the same key stores nothing and resolves with the first entry", async (store) => {
    const key = freshStream();
    const idempotencyKey = uniqueId("outbox-row");
    const first = await appendOnce(store, key, idempotencyKey, { budget: 10 });
    assert.equal(first.duplicate, false);
    const repeat = await appendOnce(store, key, idempotencyKey, { budget: 99 }, "project:archived");
    // Same epoch, offset, ts, event and data: the repeat's own event and data are not stored.
    assert.deepEqual(repeat, { epoch: first.epoch, entry: first.entry, duplicate: true });
    assert.deepEqual(await store.read(key, 0, 10), { epoch: first.epoch, top: 1, entries: [first.entry], gap: null });
    // A duplicate takes no offset: the next append is the next one.
    const next = await store.append(key, "project:updated", { budget: 11 });
    assert.deepEqual({ epoch: next.epoch, offset: next.entry.offset, duplicate: next.duplicate }, { epoch: first.epoch, offset: 2, duplicate: false });
    assert.deepEqual(await appendOnce(store, key, idempotencyKey, { budget: 10 }), repeat, "still a duplicate once later entries were appended");
    assert.equal((await store.read(key, 0, 10)).top, 2);
  });

  cases.withInstance("appends without a key, or with different keys, are all stored", async (store) => {
    const key = freshStream();
    const plain = [await store.append(key, "project:updated", { n: 1 }), await store.append(key, "project:updated", { n: 1 })];
    const keyed = [await appendOnce(store, key, uniqueId("row"), { n: 1 }), await appendOnce(store, key, uniqueId("row"), { n: 1 })];
    const all = [...plain, ...keyed];
    assert.deepEqual(all.map((result) => result.duplicate), [false, false, false, false]);
    assert.deepEqual(offsetsOf(all.map((result) => result.entry)), [1, 2, 3, 4]);
    assert.deepEqual((await store.read(key, 0, 10)).entries, all.map((result) => result.entry));
  });

  cases.withInstance("the same key on another stream or in another company is another key", async (store) => {
    const idempotencyKey = uniqueId("row");
    const company = freshStream({ stream: "company" });
    const topic = freshStream({ companyId: company.companyId });
    const elsewhere = freshStream({ stream: "company" });
    const keys = [company, topic, elsewhere];
    const firsts = [];
    for (const [index, key] of keys.entries()) firsts.push(await appendOnce(store, key, idempotencyKey, { index }));
    assert.deepEqual(firsts.map((result) => [result.duplicate, result.entry.offset]), [[false, 1], [false, 1], [false, 1]]);
    for (const [index, key] of keys.entries()) {
      const repeat = await appendOnce(store, key, idempotencyKey, { again: true });
      assert.deepEqual(repeat, { ...firsts[index]!, duplicate: true }, `stream ${index} answers with its own first entry`);
      assert.deepEqual((await store.read(key, 0, 10)).entries, [firsts[index]!.entry]);
    }
  });

  const racingName = sharedBackend
    ? `${RACERS} concurrent appends with one key through two nodes store one entry`
    : `${RACERS} concurrent appends with one key store one entry`;
  const racingAppends = async (handles: StreamStore[]) => {
    const key = freshStream();
    const idempotencyKey = uniqueId("row");
    // Plain appends race alongside: the keyed ones still store once, and offsets stay contiguous.
    const results = await Promise.all(
      Array.from({ length: RACERS }, (_, index) => {
        const handle = handles[index % handles.length]!;
        return index % 4 === 3 ? handle.append(key, "project:updated", { plain: index }) : appendOnce(handle, key, idempotencyKey, { index });
      }),
    );
    const keyed = results.filter((_, index) => index % 4 !== 3);
    const stored = keyed.filter((result) => !result.duplicate);
    assert.equal(stored.length, 1, `exactly one keyed append stores, not ${stored.length}`);
    for (const result of keyed) assert.deepEqual({ epoch: result.epoch, entry: result.entry }, { epoch: stored[0]!.epoch, entry: stored[0]!.entry });
    const plainCount = results.length - keyed.length;
    for (const handle of handles) {
      const read = await handle.read(key, 0, 100);
      assert.equal(read.top, plainCount + 1, "one entry for the key, one per plain append");
      assert.deepEqual(offsetsOf(read.entries), offsetRange(1, plainCount + 1));
      assert.equal(read.entries.filter((entry) => entry.offset === stored[0]!.entry.offset).length, 1);
    }
  };
  if (sharedBackend) cases.withTwoHandles(racingName, (nodeA, nodeB) => racingAppends([nodeA, nodeB]));
  else cases.withInstance(racingName, (store) => racingAppends([store]));

  cases.withInstance(
    "after the TTL a repeat is a new entry",
    async (store) => {
      const key = freshStream();
      const idempotencyKey = uniqueId("row");
      const first = await appendOnce(store, key, idempotencyKey, { attempt: 1 });
      await sleep(450);
      const later = await appendOnce(store, key, idempotencyKey, { attempt: 2 });
      assert.equal(later.duplicate, false);
      assert.deepEqual({ epoch: later.epoch, offset: later.entry.offset }, { epoch: first.epoch, offset: 2 });
      assert.deepEqual(later.entry.data, { attempt: 2 });
      // The new entry is now what the key answers with.
      assert.deepEqual(await appendOnce(store, key, idempotencyKey, { attempt: 3 }), { ...later, duplicate: true });
    },
    { factoryOptions: { ttlMs: 300 }, timeoutMs: TTL_CASE_TIMEOUT_MS },
  );

  cases.withInstance(
    "a repeat whose first entry the size cap dropped stores nothing and keeps the first offset and ts",
    async (store) => {
      const key = freshStream();
      const idempotencyKey = uniqueId("row");
      const first = await appendOnce(store, key, idempotencyKey, { attempt: 1 });
      const { entries: later } = await appendSequence(store, key, 2);
      assert.deepEqual((await store.read(key, 0, 10)).entries, later, "the cap dropped the first entry");
      const repeat = await appendOnce(store, key, idempotencyKey, { attempt: 2 }, "project:archived");
      assert.deepEqual(repeat, {
        epoch: first.epoch,
        entry: { offset: first.entry.offset, ts: first.entry.ts, event: "project:archived", data: { attempt: 2 } },
        duplicate: true,
      });
      assert.deepEqual((await store.read(key, 1, 10)).entries, later, "nothing was stored");
    },
    { factoryOptions: { size: 2 } },
  );

  cases.withInstance(
    "a stream's keys are bounded by 10 × size, the oldest forgotten first",
    async (store) => {
      const key = freshStream();
      const keys = Array.from({ length: 21 }, (_, index) => uniqueId(`row-${index}`));
      const firsts = [];
      for (const idempotencyKey of keys) firsts.push(await appendOnce(store, key, idempotencyKey, { idempotencyKey }));
      // size 2: the newest 20 keys are remembered.
      for (let index = keys.length - 1; index >= 1; index -= 1) {
        const repeat = await appendOnce(store, key, keys[index]!, { again: true });
        assert.equal(repeat.duplicate, true, `key ${index} is remembered`);
        assert.equal(repeat.entry.offset, firsts[index]!.entry.offset);
      }
      const forgotten = await appendOnce(store, key, keys[0]!, { again: true });
      assert.equal(forgotten.duplicate, false, "the oldest key was forgotten");
      assert.deepEqual({ offset: forgotten.entry.offset, data: forgotten.entry.data }, { offset: 22, data: { again: true } });
    },
    { factoryOptions: { size: 2 } },
  );

  cases.withInstance("keys may hold any well-formed text up to 200 characters", async (store) => {
    const key = freshStream();
    // 200 code points, 400 UTF-16 units.
    const astral = "🏗".repeat(200);
    for (const idempotencyKey of ["a", ":{}%/| é", "x".repeat(200), astral, "__proto__", "constructor"]) {
      const first = await appendOnce(store, key, idempotencyKey, { idempotencyKey });
      assert.equal(first.duplicate, false, `${JSON.stringify(idempotencyKey.slice(0, 20))} is a new key`);
      assert.deepEqual(await appendOnce(store, key, idempotencyKey, { again: true }), { ...first, duplicate: true });
    }
    // Keys are compared exactly: these are distinct.
    const composed = await appendOnce(store, key, "caf\u00e9", {});
    const decomposed = await appendOnce(store, key, "cafe\u0301", {});
    assert.deepEqual([composed.duplicate, decomposed.duplicate], [false, false]);
  });

  cases.withInstance("a malformed key is refused with a TypeError and nothing is stored", async (store) => {
    const key = freshStream();
    const malformed: unknown[] = ["", "\ud800", "a\udc00b", "x".repeat(201), "🏗".repeat(201), 42, null, {}];
    for (const idempotencyKey of malformed) {
      await assert.rejects(
        store.append(key, "project:updated", {}, { idempotencyKey: idempotencyKey as string }),
        TypeError,
        `${typeof idempotencyKey === "string" ? `${idempotencyKey.length} units` : String(idempotencyKey)} is refused`,
      );
    }
    assert.equal((await store.read(key, 0, 10)).top, 0);
  });
}
