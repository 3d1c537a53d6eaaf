import { expect, test } from "vitest";
import { localStorageDedupStore, memoryDedupStore, type KeyValueStorage } from "@truss/client";

/** A Map behind the Web Storage methods the store uses, standing in for `localStorage`. */
function fakeStorage(): KeyValueStorage & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return { data, getItem: (key) => data.get(key) ?? null, setItem: (key, value) => void data.set(key, value) };
}

test("memoryDedupStore remembers ids and forgets the oldest past its bound", () => {
  const store = memoryDedupStore(3);
  for (const id of ["1-0", "1-1", "1-2"]) store.add(id);
  expect(store.has("1-0")).toBe(true);
  store.add("1-1");
  store.add("1-3");
  expect(["1-0", "1-1", "1-2", "1-3"].map((id) => store.has(id))).toEqual([false, true, true, true]);
});

test("localStorageDedupStore survives a reload: a new store on the same key knows the ids", () => {
  const storage = fakeStorage();
  const before = localStorageDedupStore("truss:inbox:alice", 1000, storage);
  before.add("1700000000000-0");
  before.add("1700000000000-1");
  const after = localStorageDedupStore("truss:inbox:alice", 1000, storage);
  expect(after.has("1700000000000-0")).toBe(true);
  expect(after.has("1700000000000-2")).toBe(false);
  expect(localStorageDedupStore("truss:inbox:bob", 1000, storage).has("1700000000000-0")).toBe(false);
});

test("localStorageDedupStore stays bounded in storage too", () => {
  const storage = fakeStorage();
  const store = localStorageDedupStore("k", 2, storage);
  for (const id of ["1-0", "1-1", "1-2"]) store.add(id);
  expect(JSON.parse(storage.data.get("k")!)).toEqual(["1-1", "1-2"]);
  const smaller = localStorageDedupStore("k", 1, storage);
  expect([smaller.has("1-1"), smaller.has("1-2")]).toEqual([false, true]);
});

test("corrupt data, a full storage or no storage at all degrade to memory instead of failing", () => {
  const corrupt = fakeStorage();
  corrupt.data.set("k", "{not json");
  expect(localStorageDedupStore("k", 10, corrupt).has("1-0")).toBe(false);

  const full: KeyValueStorage = {
    getItem: () => null,
    setItem: () => {
      throw new Error("QuotaExceededError");
    },
  };
  const store = localStorageDedupStore("k", 10, full);
  expect(() => store.add("1-0")).not.toThrow();
  expect(store.has("1-0")).toBe(true);

  // Node has no localStorage: the default falls back to memory.
  const headless = localStorageDedupStore("k");
  headless.add("1-0");
  expect(headless.has("1-0")).toBe(true);
});

test("a bound that is not a positive integer is refused", () => {
  expect(() => memoryDedupStore(0)).toThrow(TypeError);
  expect(() => localStorageDedupStore("k", 1.5, fakeStorage())).toThrow(TypeError);
});
