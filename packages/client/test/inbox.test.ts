import { afterEach, describe, expect, test, vi } from "vitest";
import { memoryInboxStore } from "@truss/core";
import type { InboxMessage } from "@truss/protocol";
import { sleep, waitFor, type TestServer } from "@truss/test-utils";
import type { ConnectionStatus, TrussClientError } from "@truss/client";
import { alice, closeAll, openClient, startServer, waitForStatus } from "./helpers.js";

let server: TestServer | undefined;
afterEach(closeAll);

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

test("each of 50 messages reaches the app once, in order, across a connection dropped mid-stream", async () => {
  server = await startServer();
  const client = openClient(server.url, alice);
  const handled: InboxMessage[] = [];
  const onTheWire: string[] = [];
  const statuses: ConnectionStatus[] = [];
  // The handler waits until the drop, so it lands while messages are received but not yet acknowledged.
  let release!: () => void;
  const dropped = new Promise<void>((resolve) => (release = resolve));
  client.onInbox(async (message) => {
    await dropped;
    handled.push(message);
  });
  client.socket.on("inbox:message", (message: InboxMessage) => onTheWire.push(message.id));
  client.onStatus((status) => statuses.push(status));
  await waitForStatus(client, "connected");

  for (const n of range(50)) {
    await server.engine.toUser("acme", "alice").emit("notification:new", { n });
    // Let the client read what was sent so far (client and server share this event loop).
    await sleep(2);
    if (n === 20) {
      await waitFor(() => onTheWire.length > 0, { message: "messages before the drop" });
      client.socket.io.engine.close();
      release();
    }
  }
  await waitFor(() => handled.length >= 50, { message: "50 handled messages" });
  await sleep(150);

  expect(statuses).toEqual(["connected", "reconnecting", "connected"]);
  expect(handled.map((message) => message.data)).toEqual(range(50).map((n) => ({ n })));
  expect(new Set(handled.map((message) => message.id)).size).toBe(50);
  // The replay after the reconnection re-sent messages the client already had: those were dropped as duplicates.
  expect(onTheWire.length).toBeGreaterThan(50);

  // Everything was acknowledged: the same device with an empty dedup store gets nothing replayed.
  client.close();
  const again = openClient(server.url, alice);
  const replayed: InboxMessage[] = [];
  again.onInbox((message) => void replayed.push(message));
  await waitForStatus(again, "connected");
  await sleep(150);
  expect(replayed).toEqual([]);
});

test("on(event) gets inbox messages by their event name, with the message; onInbox sees them too", async () => {
  server = await startServer();
  const client = openClient(server.url, alice);
  const approved: Array<[unknown, InboxMessage | undefined]> = [];
  const all: string[] = [];
  client.on("expense:approved", (data, message) => void approved.push([data, message]));
  client.onInbox((message) => void all.push(message.event));
  await waitForStatus(client, "connected");

  const sent = await server.engine.toUser("acme", "alice").emit("expense:approved", { id: "e1", amount: 120 });
  await server.engine.toUser("acme", "alice").emit("crew:assigned", { crew: "concrete" });
  await waitFor(() => all.length === 2);
  expect(all).toEqual(["expense:approved", "crew:assigned"]);
  expect(approved).toEqual([[{ id: "e1", amount: 120 }, sent]]);
});

test("a message is acknowledged only once its handler has resolved", async () => {
  const inbox = memoryInboxStore();
  server = await startServer({ inbox });
  const client = openClient(server.url, alice);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  client.onInbox(() => gate);
  await waitForStatus(client, "connected");

  const sent = await server.engine.toUser("acme", "alice").emit("expense:approved", { id: "e1" });
  await sleep(150);
  expect(await inbox.cursor(alice)).toBeNull();
  release();
  await waitFor(async () => (await inbox.cursor(alice)) === sent.id, { message: "the ack" });
});

test("a handler that throws is reported; the message counts as handled and later ones still arrive", async () => {
  server = await startServer();
  const client = openClient(server.url, alice);
  const errors: TrussClientError[] = [];
  const handled: unknown[] = [];
  client.onError((error) => errors.push(error));
  client.onInbox((message) => {
    if ((message.data as { n: number }).n === 0) throw new Error("could not render");
    handled.push(message.data);
  });
  await waitForStatus(client, "connected");
  for (const n of range(3)) await server.engine.toUser("acme", "alice").emit("notification:new", { n });
  await waitFor(() => handled.length === 2);
  expect(handled).toEqual([{ n: 1 }, { n: 2 }]);
  expect(errors.map((error) => [error.code, error.message])).toEqual([["HANDLER_ERROR", "A onInbox handler threw: could not render"]]);
});

describe("when the server's store cannot be read as the device connects", () => {
  /** A memory inbox whose next `failures` reads fail as a dropped Redis connection does. */
  function flakyInbox() {
    const inbox = memoryInboxStore();
    const flaky = {
      ...inbox,
      failures: 0,
      read(...args: Parameters<typeof inbox.read>) {
        if (flaky.failures <= 0) return inbox.read(...args);
        flaky.failures--;
        return Promise.reject(new Error("Connection is closed."));
      },
    };
    return flaky;
  }

  /** Opens a second session of the same device, with an empty dedup store: what it is handed was never acknowledged. */
  async function unacknowledged(url: string): Promise<unknown[]> {
    const again = openClient(url, alice);
    const replayed: unknown[] = [];
    again.onInbox((message) => void replayed.push(message.data));
    await waitForStatus(again, "connected");
    await sleep(150);
    again.close();
    return replayed;
  }

  test("the queued messages and one sent live meanwhile are each handed to the app once, in order, and acknowledged", async () => {
    const inbox = flakyInbox();
    server = await startServer({ inbox });
    for (const n of [1, 2, 3]) await server.engine.toUser("acme", "alice").emit("notification:new", { n });
    inbox.failures = 1;
    const client = openClient(server.url, alice);
    const handled: unknown[] = [];
    client.onInbox((message) => void handled.push(message.data));
    await waitForStatus(client, "connected");
    await server.engine.toUser("acme", "alice").emit("notification:new", { n: 4 });
    await waitFor(() => handled.length >= 4, { message: "four messages handled" });
    await sleep(150);
    expect(handled).toEqual([1, 2, 3, 4].map((n) => ({ n })));
    client.close();
    expect(await unacknowledged(server.url)).toEqual([]);
  });

  test("a session the server ends because the store stays down is reconnected, and the backlog handed over once", async () => {
    const inbox = flakyInbox();
    server = await startServer({ inbox });
    for (const n of [1, 2, 3]) await server.engine.toUser("acme", "alice").emit("notification:new", { n });
    // The first read and each of the server's retries fail; the next session's read succeeds.
    inbox.failures = 8;
    const client = openClient(server.url, alice);
    const handled: unknown[] = [];
    const errors: string[] = [];
    client.onInbox((message) => void handled.push(message.data));
    client.onError((error) => void errors.push(error.code));
    // The server retries for about half a minute: only timeouts are faked, the sockets stay real.
    const connected = new Promise<void>((resolve) => client.onStatus((status) => void (status === "connected" && resolve())));
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      await connected;
      await server.engine.toUser("acme", "alice").emit("notification:new", { n: 4 });
      await vi.advanceTimersByTimeAsync(35_000);
    } finally {
      vi.useRealTimers();
    }
    await waitFor(() => handled.length >= 4, { message: "four messages handled after the reconnection" });
    await sleep(150);
    expect(errors).toEqual(["STORE_UNAVAILABLE"]);
    expect(handled).toEqual([1, 2, 3, 4].map((n) => ({ n })));
    client.close();
    expect(await unacknowledged(server.url)).toEqual([]);
  });

  test("a session the server ends because it held too much for the device while the store was down is reconnected, and every message handed over once, in order", async () => {
    const inbox = flakyInbox();
    server = await startServer({ inbox, limits: { maxBufferedBytes: 16 * 1024 } });
    for (const n of [1, 2, 3]) await server.engine.toUser("acme", "alice").emit("notification:new", { n });
    inbox.failures = Number.POSITIVE_INFINITY;
    const client = openClient(server.url, alice);
    const handled: unknown[] = [];
    const errors: string[] = [];
    client.onInbox((message) => void handled.push(message.data));
    client.onError((error) => void errors.push(error.code));
    await waitForStatus(client, "connected");
    // About 40 KiB sent live while the backlog cannot be read: more than the server holds for one socket.
    const text = "x".repeat(1024);
    for (let n = 4; n < 44; n++) await server.engine.toUser("acme", "alice").emit("notification:new", { n, text });
    await waitFor(() => errors.length > 0, { timeoutMs: 2000, message: "the session to end well before the server's retries run out" });
    inbox.failures = 0;
    await waitFor(() => handled.length >= 43, { message: "every message handled after the reconnection" });
    await sleep(150);
    expect(errors).toEqual(["STORE_UNAVAILABLE"]);
    expect(handled).toEqual([...[1, 2, 3].map((n) => ({ n })), ...range(40).map((i) => ({ n: i + 4, text }))]);
    client.close();
    expect(await unacknowledged(server.url)).toEqual([]);
  });
});
