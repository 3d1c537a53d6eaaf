import { IDBFactory } from "fake-indexeddb";
import { describe, expect, test } from "vitest";
import { indexedDbOutboxStore, localStorageOutboxStore, memoryOutboxStore, type OutboxStore, type PendingWrite } from "@truss/client";
import { fakeStorage } from "./stream-helpers.js";

const write = (seq: number, overrides: Partial<PendingWrite> = {}): PendingWrite =>
  ({ kind: "document", mutationId: `m-${seq}`, seq, createdAt: 1_700_000_000_000 + seq, type: "site-report", id: "r-1", changes: { crew: seq }, baseVersion: 3, ...overrides }) as PendingWrite;

const bySeq = (writes: PendingWrite[]) => [...writes].sort((a, b) => a.seq - b.seq);

/** Each store, with a way to open it again as the next page would (same backing storage). */
const stores: Array<[string, () => { open(): OutboxStore }]> = [
  ["memoryOutboxStore", () => {
    const store = memoryOutboxStore();
    return { open: () => store };
  }],
  ["localStorageOutboxStore", () => {
    const storage = fakeStorage();
    return { open: () => localStorageOutboxStore("truss:outbox", storage) };
  }],
  ["indexedDbOutboxStore", () => {
    const factory = new IDBFactory();
    return { open: () => indexedDbOutboxStore("truss-outbox", factory) };
  }],
];

describe.each(stores)("%s", (_, backing) => {
  test("keeps writes until they are deleted, replaces by mutation id, and hands out copies", async () => {
    const { open } = backing();
    const store = open();
    expect(await store.load()).toEqual([]);
    await store.put(write(1));
    await store.put(write(2, { kind: "event", event: "expense:submit", data: { amount: 120 } } as Partial<PendingWrite>));
    await store.put(write(3));
    await store.put(write(1, { baseVersion: 4 } as Partial<PendingWrite>));
    const loaded = bySeq(await store.load());
    expect(loaded.map((entry) => entry.mutationId)).toEqual(["m-1", "m-2", "m-3"]);
    expect(loaded[0]).toMatchObject({ baseVersion: 4 });
    expect(loaded[1]).toMatchObject({ kind: "event", event: "expense:submit", data: { amount: 120 } });
    (loaded[2] as { changes: Record<string, unknown> }).changes.crew = 99;
    expect(bySeq(await store.load())[2]).toMatchObject({ changes: { crew: 3 } });

    await store.delete("m-2");
    await store.delete("never-there");
    expect(bySeq(await store.load()).map((entry) => entry.mutationId)).toEqual(["m-1", "m-3"]);
  });

  test("what one page put, the next page loads", async () => {
    const { open } = backing();
    await open().put(write(7));
    await open().put(write(8));
    expect(bySeq(await open().load()).map((entry) => entry.seq)).toEqual([7, 8]);
  });
});

test("the localStorage store ignores foreign or corrupt data under its key, and a full storage rejects the write", async () => {
  const storage = fakeStorage();
  storage.setItem("corrupt", "{not json");
  expect(await localStorageOutboxStore("corrupt", storage).load()).toEqual([]);
  storage.setItem("foreign", JSON.stringify([{ hello: "world" }, write(1)]));
  expect((await localStorageOutboxStore("foreign", storage).load()).map((entry) => entry.mutationId)).toEqual(["m-1"]);
  const full = localStorageOutboxStore("full", {
    getItem: () => null,
    setItem: () => {
      throw new Error("QuotaExceededError");
    },
  });
  expect(() => full.put(write(1))).toThrow("QuotaExceededError");
});

test("the IndexedDB store says clearly when there is no IndexedDB", async () => {
  await expect(indexedDbOutboxStore("none", undefined).load()).rejects.toThrow("no IndexedDB");
  expect(() => indexedDbOutboxStore("")).toThrow(TypeError);
});
