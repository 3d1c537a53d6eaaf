import { afterEach, expect, test } from "vitest";
import type { StreamPosition } from "@truss/protocol";
import { sleep, waitFor, type TestServer } from "@truss/test-utils";
import { alice, closeAll, openClient, startServer, waitForStatus } from "./helpers.js";
import { countingStreamStore, numbers, range, resyncs, waitForCount } from "./stream-helpers.js";
import { memoryStreamStore, type StreamStore } from "@truss/core";

let server: TestServer | undefined;
afterEach(closeAll);

const company = { companyId: "acme", stream: "company" };

/**
 * A server whose company stream the test writes by hand: `store` appends
 * without a broadcast, and `deliver` sends a stored message live with its
 * position, in whatever order the test wants, as two nodes publishing
 * concurrently may.
 */
async function handWrittenStream(options: { recovery?: { maxReplay: number } } = {}) {
  const store = countingStreamStore();
  server = await startServer({ streams: store, ...options });
  const client = openClient(server.url, alice);
  const received = numbers(client, "stock:updated");
  await waitForStatus(client, "connected");
  const first = await server.engine.toCompany("acme").emit("stock:updated", { n: 1 });
  await waitForCount(received, 1);
  const epoch = first!.epoch;
  const append = async (n: number) => (await store.append(company, "stock:updated", { n })).entry.offset;
  const deliver = (offset: number, position: Partial<StreamPosition> = {}) =>
    server!.engine.io!.emit("stock:updated", { n: offset }, { stream: "company", epoch, offset, ...position });
  return { store, client, received, epoch, append, deliver };
}

test("a message that overtook its predecessor waits for it, and both reach the app in offset order without a read", async () => {
  const { store, received, append, deliver } = await handWrittenStream();
  for (const n of [2, 3]) await append(n);
  deliver(3);
  deliver(2);
  await waitForCount(received, 3);
  await sleep(300);
  expect(received).toEqual([1, 2, 3]);
  expect(store.reads).toBe(0);
});

test("a gap that outlives the grace period is read from the server, once", async () => {
  const { store, received, append, deliver } = await handWrittenStream();
  for (const n of range(2, 5)) await append(n);
  deliver(5);
  deliver(3);
  await sleep(50);
  expect(received).toEqual([1]);
  await waitForCount(received, 5);
  await sleep(300);
  expect(received).toEqual([1, 2, 3, 4, 5]);
  expect(store.reads).toBe(1);
});

test("filling a small hole in a busy stream asks only up to the held messages, so recovery.maxReplay does not turn it into a resync", async () => {
  const { client, received, append, deliver } = await handWrittenStream({ recovery: { maxReplay: 3 } });
  const reported = resyncs(client);
  for (const n of range(2, 20)) await append(n);
  // 2 and 3 are lost on the way; 4 to 20 arrive live: a hole of two in a stream already 19 ahead of it.
  for (const offset of range(4, 20)) deliver(offset);
  await waitForCount(received, 20);
  await sleep(200);
  expect(received).toEqual(range(1, 20));
  expect(reported).toEqual([]);
});

test("duplicates are dropped, and messages without a position go straight through, even past an open gap", async () => {
  const { client, received, append, deliver } = await handWrittenStream();
  deliver(1);
  await append(2);
  deliver(2);
  deliver(2);
  await append(3);
  deliver(3);
  await waitForCount(received, 3);

  await append(4);
  await append(5);
  deliver(5);
  server!.engine.toCompany("acme").volatile.emit("stock:updated", { n: 100 });
  // An event without a position from a raw emit, as when the server could not store it.
  server!.engine.io!.emit("stock:updated", { n: 200 });
  await waitForCount(received, 7);
  await sleep(300);
  expect(received).toEqual([1, 2, 3, 100, 200, 4, 5]);
  expect(client.recovering).toBe(false);
});

test("a stale message of an epoch the stream left is dropped once a read shows the stream is still in its own", async () => {
  const { client, store, received, deliver } = await handWrittenStream();
  const resynced = resyncs(client);
  deliver(2, { epoch: "an-old-epoch" });
  await waitFor(() => store.reads === 1);
  await sleep(100);
  await server!.engine.toCompany("acme").emit("stock:updated", { n: 2 });
  await waitForCount(received, 2);
  expect(received).toEqual([1, 2]);
  expect(resynced).toEqual([]);
});

test("a live client whose stream starts over (its store restarted empty) gets an EPOCH_CHANGED resync, since nothing says it had the old epoch's last message", async () => {
  const { client, store, received } = await handWrittenStream();
  const resynced = resyncs(client);
  store.restart();
  await server!.engine.toCompany("acme").emit("stock:updated", { n: 2 });
  await waitFor(() => resynced.length === 1, { message: "a resync" });
  await server!.engine.toCompany("acme").emit("stock:updated", { n: 3 });
  await waitFor(() => received.includes(3), { message: "the broadcast after the resync" });
  await sleep(200);
  expect(resynced).toEqual([{ stream: "company", topic: null, reason: "EPOCH_CHANGED", message: expect.any(String) }]);
  // The new epoch's first message is part of what the app refetches; live delivery goes on after it.
  expect(received).toEqual([1, 3]);
});

test("a stream that started over while a message of the old epoch was still missing is an EPOCH_CHANGED resync", async () => {
  const { client, store, received, append, deliver } = await handWrittenStream();
  const resynced = resyncs(client);
  await append(2);
  await append(3);
  deliver(3);
  store.restart();
  await server!.engine.toCompany("acme").emit("stock:updated", { n: 100 });
  await waitFor(() => resynced.length === 1, { message: "a resync" });
  await server!.engine.toCompany("acme").emit("stock:updated", { n: 101 });
  await waitForCount(received, 2);
  await sleep(200);
  expect(resynced).toEqual([{ stream: "company", topic: null, reason: "EPOCH_CHANGED", message: expect.any(String) }]);
  expect(received).toEqual([1, 101]);
});

/**
 * A device with no position connects (or subscribes) while the stream holds
 * `before` messages; then two more are stored and sent live in reverse order,
 * as when the device's own node publishes the later one while the earlier
 * one is still on its way through Redis from another node.
 */
async function freshDeviceSeesReversed(topic?: string) {
  const store = countingStreamStore();
  server = await startServer({ streams: store, ...(topic ? { authorize: () => true } : {}) });
  const key = { companyId: "acme", stream: topic ? `topic:${topic}` : "company" };
  for (const n of range(1, 3)) await store.append(key, "stock:updated", { n });
  const client = openClient(server.url, alice);
  const received = numbers(client, "stock:updated");
  const started = new Promise((resolve) => client.socket.on("stream:start", resolve));
  await waitForStatus(client, "connected");
  if (topic) await client.subscribe(topic);
  else await started;
  const { epoch } = await store.read(key, 0, 0);
  for (const n of [4, 5]) await store.append(key, "stock:updated", { n });
  // The test's one socket is the device, so the whole namespace stands in for the stream's room.
  server.engine.io!.emit("stock:updated", { n: 5 }, { stream: key.stream, epoch, offset: 5 });
  server.engine.io!.emit("stock:updated", { n: 4 }, { stream: key.stream, epoch, offset: 4 });
  await waitForCount(received, 2);
  await sleep(300);
  return { received, reads: store.reads };
}

test("a device with no position starts where the server says the company stream stood, not at the first message that reaches it", async () => {
  const { received, reads } = await freshDeviceSeesReversed();
  // Before the connection's stream:start, the device took 5 as its start and dropped 4 as already seen.
  expect(received).toEqual([4, 5]);
  expect(reads).toBe(0);
});

test("a topic subscribed just now starts where its ack says the stream stood", async () => {
  const { received } = await freshDeviceSeesReversed("project:p-17");
  expect(received).toEqual([4, 5]);
});

test("a fresh device whose first live message is not the stream's next reads the gap from the server's start", async () => {
  const store = countingStreamStore();
  server = await startServer({ streams: store });
  const client = openClient(server.url, alice);
  const received = numbers(client, "stock:updated");
  const started = new Promise((resolve) => client.socket.on("stream:start", resolve));
  await waitForStatus(client, "connected");
  await started;
  const { epoch } = await store.read(company, 0, 0);
  for (const n of [1, 2]) await store.append(company, "stock:updated", { n });
  // 1 never arrives live (lost between nodes): 2 alone reaches the device.
  server.engine.io!.emit("stock:updated", { n: 2 }, { stream: "company", epoch, offset: 2 });
  await waitForCount(received, 2);
  expect(received).toEqual([1, 2]);
  expect(store.reads).toBe(1);
});

test("positioned messages of a topic the client does not follow are handed over as they come", async () => {
  const { received } = await handWrittenStream();
  server!.engine.io!.emit("stock:updated", { n: 9 }, { stream: "topic:elsewhere", epoch: "e", offset: 9 });
  server!.engine.io!.emit("stock:updated", { n: 8 }, { stream: "topic:elsewhere", epoch: "e", offset: 8 });
  await waitFor(() => received.length === 3);
  expect(received).toEqual([1, 9, 8]);
});

/**
 * A memory stream store whose start reads (`read(key, 0, 0)`) of one stream
 * wait until `release()` or `holdMs`, whichever comes first: the window in
 * which a slow store (PostgreSQL under load, a Redis far away) is still
 * answering where the stream stands.
 */
function slowStartStore(stream: string, holdMs = 300) {
  const store = memoryStreamStore();
  let release = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  const gated: StreamStore = {
    ...store,
    append: (...args) => store.append(...args),
    trimmed: () => store.trimmed(),
    async read(key, after, limit) {
      if (key.stream === stream && limit === 0) await Promise.race([released, sleep(holdMs)]);
      return store.read(key, after, limit);
    },
  };
  return { store: gated, release };
}

test("a broadcast committed after a fresh device joined, while its start was still being read, reaches the app", async () => {
  const { store, release } = slowStartStore("company");
  server = await startServer({ streams: store });
  // Runs after the engine's own connection handler: the socket is in its company's room.
  server.engine.io!.of("/").on("connection", () => {
    void server!.engine.toCompany("acme").emit("stock:updated", { n: 1 }).then(() => release());
  });
  const client = openClient(server.url, alice);
  const received = numbers(client, "stock:updated");
  await waitForStatus(client, "connected");
  await waitForCount(received, 1, 3000);
  await server.engine.toCompany("acme").emit("stock:updated", { n: 2 });
  await waitForCount(received, 2);
  expect(received).toEqual([1, 2]);
});

test("a topic broadcast committed right after the socket joined the topic, while its start was still being read, reaches the app", async () => {
  const { store, release } = slowStartStore("topic:project:p-1");
  server = await startServer({ streams: store, topics: { patterns: ["project:{projectId}"] }, authorize: () => true });
  server.engine.io!.of("/").adapter.on("join-room", (room: string) => {
    if (room.includes("project:p-1")) void server!.engine.toTopic("acme", "project:p-1").emit("note:added", { n: 1 }).then(() => release());
  });
  const client = openClient(server.url, alice);
  const received = numbers(client, "note:added");
  await waitForStatus(client, "connected");
  await client.subscribe("project:p-1");
  await waitForCount(received, 1, 3000);
  expect(received).toEqual([1]);
});
