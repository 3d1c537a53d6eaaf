import { afterEach, expect, test } from "vitest";
import { sleep, type TestServer } from "@truss/test-utils";
import { localStoragePositionStore, memoryPositionStore, type PositionStore, type StoredPosition } from "@truss/client";
import { alice, closeAll, openClient, startServer, waitForStatus } from "./helpers.js";
import { fakeStorage, numbers, range, waitForCount } from "./stream-helpers.js";

let server: TestServer | undefined;
afterEach(closeAll);

test("the memory store keeps the last position of each stream, as a copy, forgetting the least recently saved past its bound", () => {
  const store = memoryPositionStore(2);
  const position = { epoch: "e1", offset: 3 };
  store.set("company", position);
  position.offset = 99;
  expect(store.get("company")).toEqual({ epoch: "e1", offset: 3 });
  store.set("topic:a", { epoch: "e2", offset: 1 });
  store.set("company", { epoch: "e1", offset: 4 });
  store.set("topic:b", { epoch: "e3", offset: 1 });
  expect(store.get("topic:a")).toBeUndefined();
  expect(store.get("company")).toEqual({ epoch: "e1", offset: 4 });
  store.delete("company");
  expect(store.get("company")).toBeUndefined();
  expect(() => memoryPositionStore(0)).toThrow(TypeError);
});

test("the localStorage store outlives its instance, and shrugs off corrupt data and a full storage", () => {
  const storage = fakeStorage();
  const first = localStoragePositionStore("positions", 10, storage);
  first.set("company", { epoch: "e1", offset: 7 });
  first.set("topic:a", { epoch: "e2", offset: 2 });
  first.delete("topic:a");
  expect(localStoragePositionStore("positions", 10, storage).get("company")).toEqual({ epoch: "e1", offset: 7 });
  expect(localStoragePositionStore("positions", 10, storage).get("topic:a")).toBeUndefined();

  storage.items.set("corrupt", "{not json");
  storage.items.set("foreign", JSON.stringify([["company", { epoch: 1, offset: "x" }], "junk"]));
  expect(localStoragePositionStore("corrupt", 10, storage).get("company")).toBeUndefined();
  expect(localStoragePositionStore("foreign", 10, storage).get("company")).toBeUndefined();

  const full = localStoragePositionStore("full", 10, {
    getItem: () => null,
    setItem: () => {
      throw new Error("QuotaExceededError");
    },
  });
  full.set("company", { epoch: "e1", offset: 1 });
  expect(full.get("company")).toEqual({ epoch: "e1", offset: 1 });
});

/** A store that answers a while later, as IndexedDB does. */
function slowStore(inner: PositionStore, delayMs: number): PositionStore {
  return {
    get: async (stream) => {
      await sleep(delayMs);
      return inner.get(stream) as StoredPosition | undefined;
    },
    set: async (stream, position) => {
      await sleep(1);
      await inner.set(stream, position);
    },
    delete: async (stream) => void (await inner.delete(stream)),
  };
}

test("an async store is awaited: what arrives before it answered waits, and a reload still recovers in order", async () => {
  server = await startServer();
  const shared = memoryPositionStore();
  const send = (n: number) => server!.engine.toCompany("acme").emit("stock:updated", { n });

  const first = openClient(server.url, alice, { positionStore: slowStore(shared, 50) });
  const firstHeard = numbers(first, "stock:updated");
  await waitForStatus(first, "connected");
  for (const n of range(1, 3)) await send(n);
  await waitForCount(firstHeard, 3);
  await sleep(50);
  first.close();

  for (const n of range(4, 6)) await send(n);
  const second = openClient(server.url, alice, { positionStore: slowStore(shared, 200) });
  const secondHeard = numbers(second, "stock:updated");
  await waitForStatus(second, "connected");
  // Live before the store answered: it waits for the replay of 4–6.
  await send(7);
  await waitForCount(secondHeard, 4);
  await sleep(150);
  expect(firstHeard).toEqual([1, 2, 3]);
  expect(secondHeard).toEqual([4, 5, 6, 7]);
});

test("a store that fails is reported once as STORAGE_FAILED, and delivery goes on", async () => {
  server = await startServer();
  const broken: PositionStore = {
    get: () => undefined,
    set: () => {
      throw new Error("disk full");
    },
    delete: () => undefined,
  };
  const client = openClient(server.url, alice, { positionStore: broken });
  const heard = numbers(client, "stock:updated");
  const errors: string[] = [];
  client.onError((error) => errors.push(error.code));
  await waitForStatus(client, "connected");
  for (const n of range(1, 3)) await server.engine.toCompany("acme").emit("stock:updated", { n });
  await waitForCount(heard, 3);
  expect(heard).toEqual([1, 2, 3]);
  // This device's storage: not STORE_UNAVAILABLE, which says the server's store is down.
  expect(errors).toEqual(["STORAGE_FAILED"]);
});
