import { afterEach, expect, test } from "vitest";
import { memoryInboxStore, type InboxStore } from "@truss/core";
import type { InboxMessage } from "@truss/protocol";
import { sleep, waitFor, type TestServer } from "@truss/test-utils";
import { localStorageDedupStore, memoryDedupStore, type DedupStore, type KeyValueStorage } from "@truss/client";
import { alice, closeAll, openClient, startServer, waitForStatus } from "./helpers.js";

let server: TestServer | undefined;
afterEach(closeAll);

/**
 * An inbox whose acks never land, as when a phone handles a message and the
 * page reloads (or the network drops) before the ack leaves: every new
 * connection of the device gets the whole inbox again.
 */
function lostAcksInbox(): InboxStore {
  const inbox = memoryInboxStore();
  return {
    append: (user, event, data) => inbox.append(user, event, data),
    read: (user, afterId, limit) => inbox.read(user, afterId, limit),
    ack: async () => {},
    cursor: (device) => inbox.cursor(device),
    dropped: () => inbox.dropped(),
  };
}

/** One page load: a client that records what its app handled and what the server sent. */
async function pageLoad(url: string, dedupStore: DedupStore, expectedOnTheWire: number) {
  const client = openClient(url, alice, { dedupStore });
  const handled: unknown[] = [];
  const onTheWire: InboxMessage[] = [];
  client.onInbox((message) => void handled.push(message.data));
  client.socket.on("inbox:message", (message: InboxMessage) => onTheWire.push(message));
  await waitForStatus(client, "connected");
  await waitFor(() => onTheWire.length === expectedOnTheWire, { message: `${expectedOnTheWire} messages on the wire` });
  await sleep(50);
  client.close();
  return handled;
}

test("messages handled before a reload are not handed to the app again by the new page", async () => {
  server = await startServer({ inbox: lostAcksInbox() });
  const storage = new Map<string, string>();
  const localStorage: KeyValueStorage = { getItem: (key) => storage.get(key) ?? null, setItem: (key, value) => void storage.set(key, value) };
  for (const n of [1, 2, 3]) await server.engine.toUser("acme", "alice").emit("notification:new", { n });

  const first = await pageLoad(server.url, localStorageDedupStore("truss:inbox:alice", 100, localStorage), 3);
  expect(first).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);

  for (const n of [4, 5]) await server.engine.toUser("acme", "alice").emit("notification:new", { n });
  // The reload: a new client and a new store instance over the same storage.
  const second = await pageLoad(server.url, localStorageDedupStore("truss:inbox:alice", 100, localStorage), 5);
  expect(second).toEqual([{ n: 4 }, { n: 5 }]);

  // Without the persisted ids the app would have seen everything again.
  const forgetful = await pageLoad(server.url, memoryDedupStore(), 5);
  expect(forgetful).toHaveLength(5);
});

test("two client instances sharing one memory store hand each message to the app once", async () => {
  server = await startServer({ inbox: lostAcksInbox() });
  const shared = memoryDedupStore(100);
  await server.engine.toUser("acme", "alice").emit("notification:new", { n: 1 });
  expect(await pageLoad(server.url, shared, 1)).toEqual([{ n: 1 }]);
  await server.engine.toUser("acme", "alice").emit("notification:new", { n: 2 });
  expect(await pageLoad(server.url, shared, 2)).toEqual([{ n: 2 }]);
});

test("an async store (IndexedDB-like) is awaited, keeping order and once-only delivery", async () => {
  server = await startServer({ inbox: lostAcksInbox() });
  const ids = new Set<string>();
  const slowStore: DedupStore = {
    has: async (id) => (await sleep(5), ids.has(id)),
    add: async (id) => void (await sleep(5), ids.add(id)),
  };
  for (const n of [1, 2, 3]) await server.engine.toUser("acme", "alice").emit("notification:new", { n });
  expect(await pageLoad(server.url, slowStore, 3)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
  await server.engine.toUser("acme", "alice").emit("notification:new", { n: 4 });
  expect(await pageLoad(server.url, slowStore, 4)).toEqual([{ n: 4 }]);
});

test("a dedup store that fails is reported as STORAGE_FAILED, this device's storage, and the message still reaches the app", async () => {
  server = await startServer();
  const fail = (): never => {
    throw new Error("QuotaExceededError");
  };
  const client = openClient(server.url, alice, { dedupStore: { has: fail, add: fail } });
  const handled: unknown[] = [];
  const errors: string[] = [];
  client.onInbox((message) => void handled.push(message.data));
  client.onError((error) => errors.push(error.code));
  await waitForStatus(client, "connected");
  await server.engine.toUser("acme", "alice").emit("notification:new", { n: 1 });
  await waitFor(() => errors.length === 2, { message: "the failed lookup and the failed record" });
  expect(handled).toEqual([{ n: 1 }]);
  // Not STORE_UNAVAILABLE, which says the server's store is down.
  expect(errors).toEqual(["STORAGE_FAILED", "STORAGE_FAILED"]);
});
