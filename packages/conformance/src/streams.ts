import assert from "node:assert/strict";
import type { StreamStore, StreamStoreOptions } from "@truss/core";
import { isPlausibleTimestamp, uniqueId } from "./fixtures.js";
import { caseRegistrar } from "./registrar.js";
import { afterRestartEmpty, type RestartEmpty } from "./restart.js";
import type { Factory, SuiteOptions, TestFunction } from "./runner.js";
import { registerStreamConcurrencyCases } from "./streams-concurrency.js";
import { appendSequence, freshStream, offsetRange, offsetsOf, type StreamCases } from "./streams-fixtures.js";
import { registerStreamIdempotencyCases } from "./streams-idempotency.js";
import { registerStreamIsolationCases } from "./streams-isolation.js";
import { registerStreamRetentionCases } from "./streams-retention.js";

/** Capabilities of the stream store under test, and the suite's hooks. */
export interface StreamSuiteOptions extends SuiteOptions<StreamStore> {
  /**
   * Calling the factory twice gives two handles on the same data, as two
   * engine nodes sharing one Redis would hold. The concurrent-append cases
   * (with and without an idempotency key) then spread their appends over
   * both handles.
   */
  sharedBackend?: boolean;
  /**
   * Makes the store lose all its history, as a restart of a store that keeps
   * nothing on disk does, and gives the handle to use after it (see
   * {@link RestartEmpty}). Enables the case where every stream must then
   * start a new epoch.
   *
   * @example
   * { restartEmpty: (store, options) => memoryStreamStore(options) }
   */
  restartEmpty?: RestartEmpty<StreamStore, StreamStoreOptions>;
}

/**
 * Registers the {@link StreamStore} conformance cases with `test`. The
 * factory is called once per case with the options that case needs (a small
 * `size`, a short `ttlMs`; `{}` otherwise), and every case uses fresh random
 * company and stream ids. Idempotent appends (`append(..., { idempotencyKey })`)
 * are covered too: repeats, keys of other streams and companies, racing
 * repeats, expiry after the TTL, the first entry dropped by the size cap,
 * the bound on remembered keys, and malformed keys.
 *
 * @example
 * streamStoreSuite(test, (options) => redisStreamStore({ ...options, redis }), { sharedBackend: true });
 */
export function streamStoreSuite(
  test: TestFunction,
  factory: Factory<StreamStore, StreamStoreOptions>,
  options: StreamSuiteOptions = {},
): void {
  const cases = caseRegistrar(test, factory, options, { prefix: "StreamStore", factoryOptions: {} });
  registerStreamLogCases(cases);
  registerStreamEpochCases(cases);
  if (options.restartEmpty) registerStreamRestartCases(cases, options.restartEmpty, options.teardown);
  registerStreamRetentionCases(cases);
  registerStreamConcurrencyCases(cases, options.sharedBackend ?? false);
  registerStreamIsolationCases(cases);
  registerStreamIdempotencyCases(cases, options.sharedBackend ?? false);
}

function registerStreamLogCases(cases: StreamCases): void {
  cases.withInstance("offsets start at 1 and count up by one per append", async (store) => {
    const key = freshStream();
    const data = { projectId: uniqueId("project"), budget: 1_250_000, phases: [{ name: "foundation" }] };
    const first = await store.append(key, "project:updated", data);
    assert.equal(first.duplicate, false, "an append without an idempotency key is never a duplicate");
    assert.deepEqual({ ...first.entry, ts: 0 }, { offset: 1, event: "project:updated", data, ts: 0 });
    assert.ok(isPlausibleTimestamp(first.entry.ts), `ts ${first.entry.ts} is epoch ms`);
    assert.ok(typeof first.epoch === "string" && first.epoch.length > 0, "the epoch is a non-empty string");
    const { entries } = await appendSequence(store, key, 5);
    assert.deepEqual(offsetsOf(entries), [2, 3, 4, 5, 6]);
  });

  cases.withInstance("read after an offset returns the rest in order, as appended", async (store) => {
    const key = freshStream();
    const { epoch, entries } = await appendSequence(store, key, 10);
    assert.deepEqual(await store.read(key, 0, 100), { epoch, top: 10, entries, gap: null });
    assert.deepEqual(await store.read(key, 4, 100), { epoch, top: 10, entries: entries.slice(4), gap: null });
    assert.deepEqual(await store.read(key, 9, 100), { epoch, top: 10, entries: entries.slice(9), gap: null });
  });

  cases.withInstance("read returns at most limit entries, the oldest first", async (store) => {
    const key = freshStream();
    const { entries } = await appendSequence(store, key, 10);
    const page = await store.read(key, 2, 3);
    assert.deepEqual(page.entries, entries.slice(2, 5));
    assert.equal(page.top, 10);
    assert.equal(page.gap, null);
  });

  cases.withInstance("paging with after and limit reaches the top with no entry missed or repeated", async (store) => {
    const key = freshStream();
    await appendSequence(store, key, 10);
    const offsets: number[] = [];
    let after = 0;
    for (let page = 0; page < 10; page += 1) {
      const read = await store.read(key, after, 3);
      if (read.entries.length === 0) break;
      offsets.push(...offsetsOf(read.entries));
      after = read.entries.at(-1)!.offset;
    }
    assert.deepEqual(offsets, offsetRange(1, 10));
  });

  cases.withInstance("read at or past the top returns no entries and no gap", async (store) => {
    const key = freshStream();
    const { epoch } = await appendSequence(store, key, 3);
    for (const after of [3, 4, 1000]) {
      assert.deepEqual(await store.read(key, after, 10), { epoch, top: 3, entries: [], gap: null }, `after ${after}`);
    }
  });

  cases.withInstance("read with limit 0 returns no entries but the epoch and top", async (store) => {
    const key = freshStream();
    const { epoch } = await appendSequence(store, key, 3);
    assert.deepEqual(await store.read(key, 0, 0), { epoch, top: 3, entries: [], gap: null });
  });

  cases.withInstance("data of every JSON shape reads back as it was appended", async (store) => {
    const key = freshStream();
    const values = [{ nested: { list: [1, "two", null] } }, ["a", 1], "text with \"quotes\", commas and é🏗", 0, -1.5, true, null, {}];
    for (const value of values) await store.append(key, "crew:changed", value);
    const read = await store.read(key, 0, 100);
    assert.deepEqual(read.entries.map((entry) => entry.data), values);
    assert.ok(read.entries.every((entry) => entry.event === "crew:changed"));
  });

  // `StreamStore`: entries handed out are new objects.
  cases.withInstance("a caller changing an entry it was handed changes nothing stored", async (store) => {
    const key = freshStream();
    const { entry } = await store.append(key, "project:updated", { index: 0 });
    const kept = structuredClone(entry);
    const [read] = (await store.read(key, 0, 10)).entries;
    for (const handedOut of [entry, read!]) {
      handedOut.offset = 42;
      handedOut.event = "forged";
      handedOut.ts = 0;
    }
    assert.deepEqual((await store.read(key, 0, 10)).entries, [kept]);
  });

  cases.withInstance("ping resolves when the store has one", async (store) => {
    assert.ok(store.ping === undefined || typeof store.ping === "function", "ping is optional but must be a method");
    await store.ping?.();
  });
}

function registerStreamEpochCases(cases: StreamCases): void {
  cases.withInstance("the epoch stays the same across appends and reads", async (store) => {
    const key = freshStream();
    const { epoch } = await appendSequence(store, key, 3);
    assert.equal((await store.read(key, 0, 10)).epoch, epoch);
    assert.equal((await store.append(key, "project:updated", { index: 3 })).epoch, epoch);
    assert.equal((await store.read(key, 3, 10)).epoch, epoch);
  });

  cases.withInstance("a stream that never had an entry reads as top 0, and its first append keeps that epoch", async (store) => {
    const key = freshStream();
    const empty = await store.read(key, 0, 10);
    assert.ok(typeof empty.epoch === "string" && empty.epoch.length > 0, "the epoch is a non-empty string");
    assert.deepEqual(empty, { epoch: empty.epoch, top: 0, entries: [], gap: null });
    assert.equal((await store.read(key, 5, 10)).epoch, empty.epoch, "a second read sees the same epoch");
    const first = await store.append(key, "project:updated", { index: 0 });
    assert.equal(first.epoch, empty.epoch, "the first append uses the epoch the read reported");
    assert.equal(first.entry.offset, 1);
  });
}

function registerStreamRestartCases(
  cases: StreamCases,
  restartEmpty: RestartEmpty<StreamStore, StreamStoreOptions>,
  teardown: StreamSuiteOptions["teardown"],
): void {
  // `StreamRead.epoch`: "changes whenever the stream's history was lost (a store restarted empty ...)".
  cases.withInstance(
    "after the store lost its history every stream starts a new epoch at offset 1, whether read or appended to first",
    async (store) => {
      const [readFirst, appendedFirst] = [freshStream(), freshStream()];
      const before = [(await appendSequence(store, readFirst, 5)).epoch, (await appendSequence(store, appendedFirst, 1)).epoch];
      await afterRestartEmpty(store, {}, restartEmpty, teardown, async (restarted) => {
        const read = await restarted.read(readFirst, 5, 10);
        assert.notEqual(read.epoch, before[0], "a device holding offset 5 of the old epoch is told the epoch changed");
        assert.deepEqual(read, { epoch: read.epoch, top: 0, entries: [], gap: null });
        const next = await restarted.append(readFirst, "project:updated", { index: 0 });
        assert.deepEqual({ epoch: next.epoch, offset: next.entry.offset }, { epoch: read.epoch, offset: 1 });
        const appended = await restarted.append(appendedFirst, "project:updated", { index: 0 });
        assert.notEqual(appended.epoch, before[1]);
        assert.equal(appended.entry.offset, 1);
      });
    },
    { timeoutMs: 30_000 },
  );
}
