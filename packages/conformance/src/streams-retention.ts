import assert from "node:assert/strict";
import { sleep } from "./fixtures.js";
import { appendSequence, freshStream, offsetRange, offsetsOf, type StreamCases, trimsSince } from "./streams-fixtures.js";

const TTL_CASE_TIMEOUT_MS = 15_000;

/**
 * Cases for what the size cap and the TTL drop: the oldest entries go first,
 * a reader behind them is told why (`gap`), offsets and the epoch carry on,
 * and every drop is counted. Counts are compared before and after, since a
 * shared backend's totals include other cases' drops.
 */
export function registerStreamRetentionCases(cases: StreamCases): void {
  cases.withInstance(
    "over the size cap the oldest entries go first, and a reader behind the cap is told HISTORY_TRIMMED",
    async (store) => {
      const key = freshStream();
      const before = await store.trimmed();
      const { epoch, entries } = await appendSequence(store, key, 8);
      const kept = entries.slice(3);
      assert.deepEqual(await store.read(key, 0, 100), { epoch, top: 8, entries: kept, gap: "HISTORY_TRIMMED" });
      assert.deepEqual(await store.read(key, 2, 100), { epoch, top: 8, entries: kept, gap: "HISTORY_TRIMMED" });
      assert.deepEqual(await store.read(key, 3, 100), { epoch, top: 8, entries: kept, gap: null }, "a reader within the cap misses nothing");
      assert.deepEqual(await store.read(key, 6, 100), { epoch, top: 8, entries: entries.slice(6), gap: null });
      assert.deepEqual(trimsSince(before, await store.trimmed()), { trimmed: 3, expired: 0 });

      const next = await store.append(key, "project:updated", { index: 8 });
      assert.deepEqual({ epoch: next.epoch, offset: next.entry.offset }, { epoch, offset: 9 }, "offsets carry on past a trim");
      assert.deepEqual(trimsSince(before, await store.trimmed()), { trimmed: 4, expired: 0 });
    },
    { factoryOptions: { size: 5 } },
  );

  cases.withInstance(
    "entries past the TTL are dropped, and a reader behind them is told HISTORY_EXPIRED",
    async (store) => {
      const key = freshStream();
      const before = await store.trimmed();
      const { epoch } = await appendSequence(store, key, 3);
      await sleep(450);
      assert.deepEqual(await store.read(key, 0, 10), { epoch, top: 3, entries: [], gap: "HISTORY_EXPIRED" });
      assert.deepEqual(await store.read(key, 3, 10), { epoch, top: 3, entries: [], gap: null }, "a reader at the top misses nothing");
      const next = await store.append(key, "project:updated", { index: 3 });
      assert.deepEqual({ epoch: next.epoch, offset: next.entry.offset }, { epoch, offset: 4 }, "the epoch outlives its entries");
      assert.deepEqual(await store.read(key, 1, 10), { epoch, top: 4, entries: [next.entry], gap: "HISTORY_EXPIRED" });
      assert.deepEqual(trimsSince(before, await store.trimmed()), { trimmed: 0, expired: 3 });
    },
    { factoryOptions: { ttlMs: 200 }, timeoutMs: TTL_CASE_TIMEOUT_MS },
  );

  cases.withInstance(
    "entries younger than the TTL are kept",
    async (store) => {
      const key = freshStream();
      await store.append(key, "project:updated", { index: 0 });
      await sleep(300);
      const younger = await store.append(key, "project:updated", { index: 1 });
      await sleep(300);
      const read = await store.read(key, 0, 10);
      assert.deepEqual(read.entries, [younger.entry]);
      assert.equal(read.gap, "HISTORY_EXPIRED");
      assert.deepEqual((await store.read(key, 1, 10)).entries, [younger.entry]);
    },
    { factoryOptions: { ttlMs: 500 }, timeoutMs: TTL_CASE_TIMEOUT_MS },
  );

  cases.withInstance(
    "after the TTL then the cap dropped entries, each reader is told what dropped its next entry",
    async (store) => {
      const key = freshStream();
      const before = await store.trimmed();
      await appendSequence(store, key, 2);
      await sleep(650);
      const { entries } = await appendSequence(store, key, 5);
      assert.deepEqual(offsetsOf(entries), offsetRange(3, 7));
      const read = await store.read(key, 0, 10);
      assert.deepEqual({ gap: read.gap, offsets: offsetsOf(read.entries) }, { gap: "HISTORY_EXPIRED", offsets: [5, 6, 7] });
      assert.equal((await store.read(key, 2, 10)).gap, "HISTORY_TRIMMED");
      assert.equal((await store.read(key, 3, 10)).gap, "HISTORY_TRIMMED");
      assert.equal((await store.read(key, 4, 10)).gap, null);
      assert.deepEqual(trimsSince(before, await store.trimmed()), { trimmed: 2, expired: 2 });
    },
    { factoryOptions: { size: 3, ttlMs: 400 }, timeoutMs: TTL_CASE_TIMEOUT_MS },
  );

  // `StreamStoreOptions.idleMs`: a stream whose entries all expired is
  // remembered that long after its last append or read; "after it the stream
  // starts a new epoch".
  cases.withInstance(
    "a stream idle past idleMs after its entries expired is forgotten, and starts a new epoch at offset 1",
    async (store) => {
      const key = freshStream();
      const { epoch } = await appendSequence(store, key, 2);
      await sleep(600);
      const read = await store.read(key, 2, 10);
      assert.notEqual(read.epoch, epoch, "the forgotten stream's epoch changed");
      assert.deepEqual(read, { epoch: read.epoch, top: 0, entries: [], gap: null });
      const next = await store.append(key, "project:updated", { index: 0 });
      assert.deepEqual({ epoch: next.epoch, offset: next.entry.offset }, { epoch: read.epoch, offset: 1 });
    },
    { factoryOptions: { ttlMs: 100, idleMs: 200 }, timeoutMs: TTL_CASE_TIMEOUT_MS },
  );

  cases.withInstance("trimmed() reports whole counts", async (store) => {
    const { trimmed, expired } = await store.trimmed();
    assert.ok(Number.isInteger(trimmed) && trimmed >= 0, `trimmed ${trimmed} is a count`);
    assert.ok(Number.isInteger(expired) && expired >= 0, `expired ${expired} is a count`);
  });
}
