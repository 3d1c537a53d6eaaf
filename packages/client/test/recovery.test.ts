import { afterEach, expect, test } from "vitest";
import { TrussError, type Authenticator } from "@truss/core";
import { signToken, signTokenAfter, sleep, testAuth, waitFor, type TcpProxy, type TestServer } from "@truss/test-utils";
import { localStoragePositionStore, memoryPositionStore, type TrussClient } from "@truss/client";
import { alice, closeAll, openClient, startProxy, startServer, waitForStatus } from "./helpers.js";
import { countingStreamStore, fakeStorage, numbers, range, recoveries, resyncs, waitForCount, whileCut } from "./stream-helpers.js";

let server: TestServer | undefined;
let proxy: TcpProxy | undefined;
afterEach(closeAll);

async function replayed(): Promise<number> {
  return Number(/^truss_stream_replayed_total (\d+)$/m.exec(await server!.engine.metrics())?.[1] ?? 0);
}

/** A client through the proxy that has handled the first broadcast of the stream, so it holds a position. */
async function positionedClient(send: (n: number) => Promise<unknown>, event: string, subscribeTo?: string) {
  const client = openClient(proxy!.url, alice);
  const received = numbers(client, event);
  const recovering = recoveries(client);
  const resynced = resyncs(client);
  await waitForStatus(client, "connected");
  if (subscribeTo) await client.subscribe(subscribeTo);
  await send(0);
  await waitForCount(received, 1);
  return { client, received, recovering, resynced };
}

test("a client whose connection is cut while 50 company broadcasts go out gets all 50 once, in order, then live ones", async () => {
  server = await startServer();
  proxy = await startProxy(server.port);
  const send = (n: number) => server!.engine.toCompany("acme").emit("stock:updated", { n });
  const { client, received, recovering, resynced } = await positionedClient(send, "stock:updated");

  await whileCut(proxy, async () => {
    await waitFor(() => client.status === "reconnecting", { message: "the client to notice the cut" });
    for (const n of range(1, 50)) await send(n);
  });
  await waitForStatus(client, "connected");
  await waitForCount(received, 51);
  for (const n of range(51, 60)) await send(n);
  await waitForCount(received, 61);
  await sleep(200);

  expect(received).toEqual(range(0, 60));
  expect(await replayed()).toBe(50);
  expect(resynced).toEqual([]);
  expect(recovering).toEqual([true, false]);
  expect(client.recovering).toBe(false);
});

test("a topic's broadcasts sent while the connection was cut arrive once, in order, after it is subscribed again", async () => {
  server = await startServer({ authorize: () => true });
  proxy = await startProxy(server.port);
  const send = (n: number) => server!.engine.toTopic("acme", "project:p-17").emit("task:moved", { n });
  const { client, received, recovering, resynced } = await positionedClient(send, "task:moved", "project:p-17");
  const companyNews = numbers(client, "stock:updated");
  // The replayed ones came through the topic's stream too.
  const viaTopic: number[] = [];
  client.onTopic("project:p-17", "task:moved", (data) => void viaTopic.push((data as { n: number }).n));

  await whileCut(proxy, async () => {
    await waitFor(() => client.status === "reconnecting", { message: "the client to notice the cut" });
    for (const n of range(1, 50)) await send(n);
    // Another project's broadcasts are another stream, which this client never hears.
    await server!.engine.toTopic("acme", "project:p-18").emit("task:moved", { n: -1 });
  });
  await waitForCount(received, 51);
  for (const n of range(51, 60)) await send(n);
  await server.engine.toCompany("acme").emit("stock:updated", { n: 1 });
  await waitForCount(received, 61);
  await waitForCount(companyNews, 1);
  await sleep(200);

  expect(received).toEqual(range(0, 60));
  expect(viaTopic).toEqual(range(1, 60));
  expect(companyNews).toEqual([1]);
  expect(resynced).toEqual([]);
  expect(recovering).toEqual([true, false]);
});

test("live broadcasts that arrive during the catch-up wait for it, and the app still sees one ordered sequence", async () => {
  server = await startServer();
  proxy = await startProxy(server.port);
  const send = (n: number) => server!.engine.toCompany("acme").emit("stock:updated", { n });
  const { client, received } = await positionedClient(send, "stock:updated");

  let next = 1;
  await whileCut(proxy, async () => {
    await waitFor(() => client.status === "reconnecting", { message: "the client to notice the cut" });
    while (next <= 400) await send(next++);
  });
  // Keep broadcasting through the reconnection and the two-page catch-up.
  const deadline = Date.now() + 1500;
  while (Date.now() < deadline) {
    await send(next++);
    await sleep(2);
  }
  await waitForCount(received, next);
  await sleep(200);
  expect(received).toEqual(range(0, next - 1));
});

test("a reload with a persistent position store recovers what was sent while no page was open", async () => {
  server = await startServer({ authorize: () => true });
  proxy = await startProxy(server.port);
  const storage = fakeStorage();
  const pageLoad = async () => {
    const client = openClient(server!.url, alice, { positionStore: localStoragePositionStore("truss:streams:acme:alice", 100, storage) });
    const company = numbers(client, "stock:updated");
    const topic = numbers(client, "task:moved");
    await waitForStatus(client, "connected");
    await client.subscribe("project:p-17");
    return { client, company, topic };
  };
  const company = (n: number) => server!.engine.toCompany("acme").emit("stock:updated", { n });
  const topic = (n: number) => server!.engine.toTopic("acme", "project:p-17").emit("task:moved", { n });

  const first = await pageLoad();
  for (const n of range(1, 3)) await company(n);
  for (const n of range(1, 2)) await topic(n);
  await waitForCount(first.company, 3);
  await waitForCount(first.topic, 2);
  first.client.close();

  for (const n of range(4, 9)) await company(n);
  for (const n of range(3, 5)) await topic(n);
  const second = await pageLoad();
  await waitForCount(second.company, 6);
  await waitForCount(second.topic, 3);
  await company(10);
  await waitForCount(second.company, 7);
  await sleep(200);
  expect(second.company).toEqual(range(4, 10));
  expect(second.topic).toEqual(range(3, 5));

  // Without a persistent store a new page starts from the first broadcast it hears.
  second.client.close();
  await company(11);
  const forgetful = openClient(server.url, alice, { positionStore: memoryPositionStore() });
  const heard = numbers(forgetful, "stock:updated");
  await waitForStatus(forgetful, "connected");
  await company(12);
  await waitForCount(heard, 1);
  await sleep(200);
  expect(heard).toEqual([12]);
});

test("unsubscribing forgets the topic's position: a later subscription starts afresh, with no replay", async () => {
  server = await startServer({ authorize: () => true });
  const storage = fakeStorage();
  const client = openClient(server.url, alice, { positionStore: localStoragePositionStore("positions", 100, storage) });
  const received = numbers(client, "task:moved");
  await client.subscribe("project:p-17");
  await server.engine.toTopic("acme", "project:p-17").emit("task:moved", { n: 1 });
  await waitForCount(received, 1);
  expect(storage.items.get("positions")).toContain("topic:project:p-17");

  await client.unsubscribe("project:p-17");
  expect(storage.items.get("positions")).not.toContain("topic:project:p-17");
  await server.engine.toTopic("acme", "project:p-17").emit("task:moved", { n: 2 });
  await client.subscribe("project:p-17");
  await server.engine.toTopic("acme", "project:p-17").emit("task:moved", { n: 3 });
  await waitForCount(received, 2);
  await sleep(200);
  expect(received).toEqual([1, 3]);
});

test("a revoked user gets no replay: not on the dropped connection, nor on a reload the authenticator refuses", async () => {
  const revoked = new Set<string>();
  const verify = testAuth();
  const auth: Authenticator = {
    authenticate: async (request) => {
      const principal = await verify.authenticate(request);
      if (revoked.has(principal.userId)) throw new TrussError("FORBIDDEN", "This user's access was revoked.");
      return principal;
    },
  };
  const streams = countingStreamStore();
  server = await startServer({ auth, streams });
  const positionStore = memoryPositionStore();
  const getToken = () => signToken({ userId: "alice", companyId: "acme" });
  const client = openClient(server.url, alice, { getToken, positionStore });
  const received = numbers(client, "stock:updated");
  await waitForStatus(client, "connected");
  await server.engine.toCompany("acme").emit("stock:updated", { n: 1 });
  await waitForCount(received, 1);

  revoked.add("alice");
  await server.engine.disconnectUser("acme", "alice");
  await waitForStatus(client, "closed");
  for (const n of range(2, 6)) await server.engine.toCompany("acme").emit("stock:updated", { n });

  const reload = openClient(server.url, alice, { getToken, positionStore });
  const reloaded = numbers(reload, "stock:updated");
  const errors: string[] = [];
  reload.onError((error) => errors.push(error.code));
  await waitForStatus(reload, "closed");
  await sleep(200);
  expect(errors).toContain("FORBIDDEN");
  expect(received).toEqual([1]);
  expect(reloaded).toEqual([]);
  expect(streams.reads).toBe(0);
});

test("an expired token gets no replay: the session ends at expiry and the same token is refused on reconnection", async () => {
  const streams = countingStreamStore();
  server = await startServer({ streams });
  const positionStore = memoryPositionStore();
  // Signed as a second starts, so the token lives its whole 2 s: `exp` counts whole seconds, and one signed late in a
  // second with 1 s to live could expire before a loaded machine has connected it.
  const token = await signTokenAfter(Date.now(), { userId: "alice", companyId: "acme" }, { expiresInSec: 2 });
  const client: TrussClient = openClient(server.url, alice, { token, positionStore });
  const received = numbers(client, "stock:updated");
  await waitForStatus(client, "connected");
  await server.engine.toCompany("acme").emit("stock:updated", { n: 1 });
  await waitForCount(received, 1);

  await waitForStatus(client, "closed", 6000);
  for (const n of range(2, 6)) await server.engine.toCompany("acme").emit("stock:updated", { n });
  const reload = openClient(server.url, alice, { token, positionStore });
  const reloaded = numbers(reload, "stock:updated");
  await waitForStatus(reload, "closed");
  await sleep(200);
  expect(received).toEqual([1]);
  expect(reloaded).toEqual([]);
  expect(streams.reads).toBe(0);
});

test("a topic the server drops forgets its stored position", async () => {
  server = await startServer({ authorize: () => true });
  const storage = fakeStorage();
  const client = openClient(server.url, alice, { positionStore: localStoragePositionStore("positions", 100, storage) });
  const received = numbers(client, "task:moved");
  await client.subscribe("project:p-17");
  await server.engine.toTopic("acme", "project:p-17").emit("task:moved", { n: 1 });
  await waitForCount(received, 1);
  expect(storage.items.get("positions")).toContain("topic:project:p-17");

  await server.engine.unsubscribeUser("acme", "alice", "project:p-17");
  await waitFor(() => !client.subscriptions.has("project:p-17"), { message: "the drop" });
  expect(storage.items.get("positions")).not.toContain("topic:project:p-17");
});

test("sixty topics coming back at once, past the server's rate limit, each recover in full", async () => {
  server = await startServer({ authorize: () => true });
  proxy = await startProxy(server.port);
  const client = openClient(proxy.url, alice);
  const topics = Array.from({ length: 60 }, (_, index) => `project:p-${index}`);
  const received = new Map(topics.map((topic) => [topic, [] as number[]]));
  client.on("task:moved", (data) => void received.get((data as { topic: string }).topic)!.push((data as { n: number }).n));
  const resynced = resyncs(client);
  await waitForStatus(client, "connected");
  await Promise.all(topics.map((topic) => client.subscribe(topic)));
  const send = (topic: string, n: number) => server!.engine.toTopic("acme", topic).emit("task:moved", { topic, n });
  for (const topic of topics) await send(topic, 0);
  await waitFor(() => [...received.values()].every((numbers) => numbers.length === 1), { message: "a first message on every topic" });

  await whileCut(proxy, async () => {
    await waitFor(() => client.status === "reconnecting", { message: "the client to notice the cut" });
    for (const n of [1, 2]) for (const topic of topics) await send(topic, n);
  });
  await waitFor(() => [...received.values()].every((numbers) => numbers.length === 3) && !client.recovering, { timeoutMs: 15_000, message: "every topic recovered" });
  await sleep(200);
  for (const topic of topics) expect(received.get(topic), topic).toEqual([0, 1, 2]);
  expect(resynced).toEqual([]);
}, 30_000);
