import { streamStoreSuite } from "@truss/conformance";
import { memoryStreamStore, type StreamStore, type StreamStoreOptions } from "@truss/core";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterEach, describe, expect, test, vi } from "vitest";
import { STREAM_RECORD_OVERHEAD_BYTES } from "../src/streams/memory.js";

// A memory store restarted is a new one, with no history.
streamStoreSuite(test, (options) => memoryStreamStore(options), {
  prefix: "memoryStreamStore",
  restartEmpty: (_store, options) => memoryStreamStore(options),
});

// One store per distinct set of options, handed to every caller: the
// in-process stand-in for two engine nodes on one Redis.
const shared = new Map<string, StreamStore>();
streamStoreSuite(
  test,
  (options: StreamStoreOptions) => {
    const key = JSON.stringify(options);
    const store = shared.get(key) ?? memoryStreamStore(options);
    shared.set(key, store);
    return store;
  },
  { prefix: "memoryStreamStore, shared", sharedBackend: true },
);

const acme = { companyId: "acme", stream: "company" };
const globex = { companyId: "globex", stream: "topic:project-1" };

function manualClock(start = 1_700_000_000_000) {
  let current = start;
  return { now: () => current, advance: (ms: number) => void (current += ms) };
}

/** The heap in use after a full collection, so what a store still holds can be told from garbage. */
function heapUsedAfterGc(): number {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
  return process.memoryUsage().heapUsed;
}

/** The epoch a read reports, without reading entries. */
async function epochOf(store: StreamStore, key: typeof acme) {
  return (await store.read(key, 0, 0)).epoch;
}

describe("memoryStreamStore", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  test("schedules no timers, so it never keeps the process alive", async () => {
    vi.useFakeTimers();
    const store = memoryStreamStore({ ttlMs: 1000, idleMs: 1000 });
    await store.append(acme, "e", {});
    await store.read(acme, 0, 10);
    await store.trimmed();
    expect(vi.getTimerCount()).toBe(0);
  });

  test("an entry expires at the instant its TTL runs out", async () => {
    const clock = manualClock();
    const store = memoryStreamStore({ now: clock.now, ttlMs: 1000 });
    await store.append(acme, "e", {});
    clock.advance(999);
    expect((await store.read(acme, 0, 10)).entries).toHaveLength(1);
    clock.advance(1);
    expect(await store.read(acme, 0, 10)).toMatchObject({ top: 1, entries: [], gap: "HISTORY_EXPIRED" });
    expect(await store.trimmed()).toEqual({ trimmed: 0, expired: 1 });
  });

  test("trimmed() counts expiry in streams nobody touched since", async () => {
    const clock = manualClock();
    const store = memoryStreamStore({ now: clock.now, ttlMs: 1000 });
    await store.append(acme, "e", {});
    await store.append(globex, "e", {});
    clock.advance(1000);
    expect(await store.trimmed()).toEqual({ trimmed: 0, expired: 2 });
    expect(await store.trimmed()).toEqual({ trimmed: 0, expired: 2 });
  });

  test("timestamps never go back with the clock, so the TTL drops from the front", async () => {
    const clock = manualClock(5000);
    const store = memoryStreamStore({ now: clock.now, ttlMs: 1000 });
    await store.append(acme, "e", 1);
    clock.advance(-2000);
    const second = await store.append(acme, "e", 2);
    expect(second.entry.ts).toBe(5000);
  });

  test("a stream is remembered while idle for idleMs after its entries expired, with its epoch", async () => {
    const clock = manualClock();
    const store = memoryStreamStore({ now: clock.now, ttlMs: 1000, idleMs: 5000 });
    const { epoch } = await store.append(acme, "e", {});
    clock.advance(1000 + 4999);
    expect(await store.read(acme, 1, 10)).toEqual({ epoch, top: 1, entries: [], gap: null });
    // That read counts as activity: the idle time starts again.
    clock.advance(1000 + 4999);
    expect(await epochOf(store, acme)).toBe(epoch);
  });

  test("an idle stream whose entries expired is forgotten, and comes back with a new epoch at offset 1", async () => {
    const clock = manualClock();
    const store = memoryStreamStore({ now: clock.now, ttlMs: 1000, idleMs: 5000 });
    const { epoch } = await store.append(acme, "e", {});
    await store.append(acme, "e", {});
    clock.advance(1000 + 5000);
    const read = await store.read(acme, 2, 10);
    expect(read.epoch).not.toBe(epoch);
    expect(read).toEqual({ epoch: read.epoch, top: 0, entries: [], gap: null });
    const next = await store.append(acme, "e", {});
    expect(next).toMatchObject({ epoch: read.epoch, entry: { offset: 1 } });
    expect(await store.trimmed()).toEqual({ trimmed: 0, expired: 2 });
  });

  test("idle streams are dropped by a sweep while other streams are used, so their memory is freed", async () => {
    const clock = manualClock();
    const store = memoryStreamStore({ now: clock.now, ttlMs: 1000, idleMs: 1000 });
    const idle = 20_000;
    const baseline = heapUsedAfterGc();
    for (let index = 0; index < idle; index += 1) {
      await store.append({ companyId: `company-${index}`, stream: `topic:project-${index}` }, "e", { index });
    }
    const withRecords = heapUsedAfterGc();
    clock.advance(2000);
    // Activity on any stream is enough for the sweep to run over every stream.
    await store.append(acme, "e", {});
    const afterSweep = heapUsedAfterGc();
    expect(withRecords - baseline).toBeGreaterThan(idle * 200);
    expect(withRecords - afterSweep).toBeGreaterThan((withRecords - baseline) * 0.8);
    expect(await store.trimmed()).toEqual({ trimmed: 0, expired: idle });
  });

  test("a stream with live entries is never forgotten, however long since its last read", async () => {
    const clock = manualClock();
    const store = memoryStreamStore({ now: clock.now, ttlMs: 10_000, idleMs: 1000 });
    const { epoch } = await store.append(acme, "e", {});
    clock.advance(9_999);
    await store.append(globex, "e", {});
    expect(await store.read(acme, 0, 10)).toMatchObject({ epoch, top: 1, gap: null });
  });

  test("data is kept as given; entries handed out are new objects", async () => {
    const store = memoryStreamStore();
    const data = { items: ["rebar"] };
    const appended = await store.append(acme, "e", data);
    appended.entry.offset = 99;
    const [read] = (await store.read(acme, 0, 1)).entries;
    expect(read).toMatchObject({ offset: 1, data });
    expect(read?.data).toBe(data);
  });

  test("an entry without data reads back without data", async () => {
    const store = memoryStreamStore();
    await store.append(acme, "ping", undefined);
    expect((await store.read(acme, 0, 1)).entries[0]?.data).toBeUndefined();
  });

  test("after that is not an offset is refused", async () => {
    const store = memoryStreamStore();
    for (const after of [-1, 1.5, Number.NaN]) await expect(store.read(acme, after, 10)).rejects.toThrow(TypeError);
  });

  test("a company's streams keep maxBytesPerCompany bytes together: its oldest entries go first, across streams, as HISTORY_TRIMMED", async () => {
    const data = { text: "x".repeat(90) };
    const size = "e".length + JSON.stringify(data).length;
    const topic = { ...acme, stream: "topic:site-1" };
    const streams = 2 * STREAM_RECORD_OVERHEAD_BYTES + acme.stream.length + topic.stream.length;
    const store = memoryStreamStore({ maxBytesPerCompany: streams + 3 * size });
    await store.append(acme, "e", data);
    await store.append(topic, "e", data);
    await store.append(acme, "e", data);
    await store.append(topic, "e", data);
    // Four entries against room for three: the company stream's first, the oldest, went.
    expect(await store.read(acme, 0, 10)).toMatchObject({ top: 2, entries: [{ offset: 2 }], gap: "HISTORY_TRIMMED" });
    expect(await store.read(topic, 0, 10)).toMatchObject({ top: 2, entries: [{ offset: 1 }, { offset: 2 }], gap: null });
    await store.append(acme, "e", data);
    expect((await store.read(topic, 0, 10)).entries.map((entry) => entry.offset)).toEqual([2]);
    // Another company keeps its own.
    await store.append(globex, "e", data);
    expect((await store.read(acme, 0, 10)).entries).toHaveLength(2);
    expect(await store.trimmed()).toEqual({ trimmed: 2, expired: 0 });
    expect(() => memoryStreamStore({ maxBytesPerCompany: 0 })).toThrow(RangeError);
  });

  test("each stream read counts in the company's bytes: past them the streams with no entry go first, the least recently touched first", async () => {
    const topic = (index: number) => ({ ...acme, stream: `topic:project:${String(index).padStart(6, "0")}` });
    const perStream = STREAM_RECORD_OVERHEAD_BYTES + topic(0).stream.length;
    const store = memoryStreamStore({ maxBytesPerCompany: 10 * perStream + 1_000 });
    const kept = await store.append(acme, "e", { n: 1 });
    const epochs: string[] = [];
    for (let index = 0; index < 1_000; index++) epochs.push((await store.read(topic(index), 0, 0)).epoch);
    // The ones read last are still held, with the epoch their readers were told, and so is the history.
    for (let index = 995; index < 1_000; index++) expect((await store.read(topic(index), 0, 0)).epoch).toBe(epochs[index]);
    expect(await store.read(acme, 0, 10)).toMatchObject({ epoch: kept.epoch, top: 1, entries: [{ offset: 1 }], gap: null });
    // One read long ago was forgotten: it starts a new epoch, which a device holding the old one sees as EPOCH_CHANGED.
    expect((await store.read(topic(0), 0, 0)).epoch).not.toBe(epochs[0]);
    expect(await store.trimmed()).toEqual({ trimmed: 0, expired: 0 });
  });

  test("a size, TTL or idle time that would keep nothing is refused", () => {
    expect(() => memoryStreamStore({ size: 0 })).toThrow(RangeError);
    expect(() => memoryStreamStore({ size: 2.5 })).toThrow(RangeError);
    expect(() => memoryStreamStore({ ttlMs: 0 })).toThrow(RangeError);
    expect(() => memoryStreamStore({ idleMs: -1 })).toThrow(RangeError);
  });
});
