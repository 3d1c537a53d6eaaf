import { afterEach, expect, test } from "vitest";
import { memoryStreamStore, type AuthorizePolicy, type RealtimeEngineOptions } from "@truss/core";
import type { DocumentUpdated } from "@truss/protocol";
import { signToken, sleep, waitFor, type TcpProxy, type TestServer } from "@truss/test-utils";
import type { DroppedSubscription, StatusChange, TrussClient, TrussClientError } from "@truss/client";
import { alice, bob, closeAll, openClient, reconnection, startProxy, startServer, waitForStatus } from "./helpers.js";

let server: TestServer | undefined;
let proxy: TcpProxy | undefined;
afterEach(closeAll);

/** Topics (and, with a policy, document watches) each ask the policy; a test reads what it was asked. */
let asked: string[] = [];
/** Topics the policy refuses from now on, as after a change of the project's members. */
let closedTopics = new Set<string>();

/** Members may follow any project but a closed one and read any document; other roles nothing. */
const policy: AuthorizePolicy = (principal, request) => {
  if (request.action === "topic:subscribe") asked.push(request.topic);
  if (!principal.roles.includes("member")) return false;
  return request.action !== "topic:subscribe" || !closedTopics.has(request.topic);
};

async function start(options: Partial<RealtimeEngineOptions> = {}): Promise<TestServer> {
  asked = [];
  closedTopics = new Set();
  server = await startServer({ authorize: policy, topics: { patterns: ["project:{projectId}"] }, ...options });
  return server;
}

/** Every payload of one application event a client hears. */
function heard(client: TrussClient, event: string): unknown[] {
  const received: unknown[] = [];
  client.on(event, (data) => void received.push(data));
  return received;
}

function recordDrops(client: TrussClient): DroppedSubscription[] {
  const drops: DroppedSubscription[] = [];
  client.onDropped((drop) => drops.push(drop));
  return drops;
}

async function connections(): Promise<number> {
  return Number(/^truss_connections_total (\d+)$/m.exec(await server!.engine.metrics())?.[1]);
}

test("subscribe resolves once the policy allowed it, and the topic's emits reach on() until unsubscribe", async () => {
  const { url, engine } = await start();
  const client = openClient(url, alice);
  const notes = heard(client, "project:note");
  await client.subscribe("project:p-17");
  expect([...client.subscriptions]).toEqual(["project:p-17"]);

  engine.toTopic("acme", "project:p-18").emit("project:note", { text: "another project" });
  engine.toTopic("globex", "project:p-17").emit("project:note", { text: "another company" });
  engine.toTopic("acme", "project:p-17").emit("project:note", { text: "concrete poured" });
  await waitFor(() => notes.length === 1, { message: "the topic's emit" });
  expect(notes).toEqual([{ text: "concrete poured" }]);

  await client.unsubscribe("project:p-17");
  expect(client.subscriptions.size).toBe(0);
  await client.subscribe("project:control");
  engine.toTopic("acme", "project:p-17").emit("project:note", { text: "after unsubscribe" });
  engine.toTopic("acme", "project:control").emit("project:note", { text: "control" });
  await waitFor(() => notes.length === 2, { message: "the control topic's emit" });
  expect(notes.at(-1)).toEqual({ text: "control" });
});

test("onTopic hears its topic's events only: stored, volatile, and those the store could not keep; on() hears them all", async () => {
  const streams = memoryStreamStore();
  let storeDown = false;
  const append: typeof streams.append = (...args) => (storeDown ? Promise.reject(new Error("store down")) : streams.append(...args));
  const { url, engine } = await start({ streams: { ...streams, append } });
  const client = openClient(url, alice);
  const all = heard(client, "site-report:filed");
  const towerA: unknown[] = [];
  const stopA = client.onTopic("project:tower-a", "site-report:filed", (data) => void towerA.push(data));
  const towerB: unknown[] = [];
  client.onTopic("project:tower-b", "site-report:filed", (data) => void towerB.push(data));
  await client.subscribe("project:tower-a");
  await client.subscribe("project:tower-b");

  await engine.toTopic("acme", "project:tower-b").emit("site-report:filed", { id: "b-stored" });
  engine.toTopic("acme", "project:tower-b").volatile.emit("site-report:filed", { id: "b-volatile" });
  await engine.toCompany("acme").emit("site-report:filed", { id: "company" });
  await engine.toUser("acme", alice.userId).emit("site-report:filed", { id: "inbox" });
  await engine.toTopic("acme", "project:tower-a").emit("site-report:filed", { id: "a-stored" });
  engine.toTopic("acme", "project:tower-a").volatile.emit("site-report:filed", { id: "a-volatile" });
  storeDown = true;
  await engine.toTopic("acme", "project:tower-a").emit("site-report:filed", { id: "a-live-only" });
  storeDown = false;
  await waitFor(() => all.length === 7, { message: "every report through on()" });
  // Stored and unstored broadcasts are not ordered against each other: compare the sets.
  const ids = (reports: unknown[]) => reports.map((report) => (report as { id: string }).id).sort();
  expect(ids(towerA)).toEqual(["a-live-only", "a-stored", "a-volatile"]);
  expect(ids(towerB)).toEqual(["b-stored", "b-volatile"]);

  stopA();
  await engine.toTopic("acme", "project:tower-a").emit("site-report:filed", { id: "a-after-stop" });
  await engine.toTopic("acme", "project:tower-b").emit("site-report:filed", { id: "b-control" });
  await waitFor(() => towerB.length === 3, { message: "the control report" });
  expect(towerA).toHaveLength(3);

  expect(() => client.onTopic("project 17", "site-report:filed", () => undefined)).toThrow(TypeError);
  expect(() => client.onTopic("project:tower-a", "inbox:message" as never, () => undefined)).toThrow(TypeError);
});

test("a refused topic rejects with the server's code and is not kept; a malformed name is refused before sending", async () => {
  const { url } = await start();
  const client = openClient(url, alice);
  // Still connecting: a name that went out would wait for the connection instead of failing at once.
  await expect(client.subscribe("project 17")).rejects.toMatchObject({ name: "TrussClientError", code: "INVALID_PAYLOAD" });
  expect(client.status).toBe("connecting");

  closedTopics.add("project:secret");
  await expect(client.subscribe("project:secret")).rejects.toMatchObject({ code: "FORBIDDEN" });
  await expect(client.subscribe("invoice:1")).rejects.toMatchObject({ code: "INVALID_PAYLOAD", message: expect.stringContaining("matches none") });
  expect(client.subscriptions.size).toBe(0);
  expect(asked).toEqual(["project:secret"]);
});

test("a server without a policy refuses every topic with FORBIDDEN", async () => {
  server = await startServer();
  const client = openClient(server.url, alice);
  await expect(client.subscribe("project:p-17")).rejects.toMatchObject({ code: "FORBIDDEN" });
});

test("past the per-connection cap, topics and watched documents together, subscribe rejects with TOO_MANY_SUBSCRIPTIONS", async () => {
  const { url } = await start({ limits: { maxSubscriptionsPerConnection: 2 } });
  const client = openClient(url, alice);
  await client.subscribe("project:p-1");
  expect(await client.documents.watch("project", "p-1")).toBeNull();
  await expect(client.subscribe("project:p-2")).rejects.toMatchObject({ code: "TOO_MANY_SUBSCRIPTIONS" });
  expect([...client.subscriptions]).toEqual(["project:p-1"]);

  await client.unsubscribe("project:p-1");
  await client.subscribe("project:p-2");
});

test("topics asked for in a burst past the server's rate limit wait their turn instead of failing", async () => {
  const { url } = await start({ limits: { eventsPerSecond: 5 } });
  const client = openClient(url, alice);
  const topics = Array.from({ length: 12 }, (_, index) => `project:p-${index}`);
  // Asked for before the connection is up, so all go out together on connect.
  await Promise.all(topics.map((topic) => client.subscribe(topic)));
  expect([...client.subscriptions]).toEqual(topics);
  expect(await server!.engine.metrics()).toMatch(/^truss_errors_total\{code="RATE_LIMITED"\} \d+$/m);
});

test("after a cut connection the client subscribes again by itself; a subscribe made offline waits for the connection", async () => {
  const { port, engine } = await start();
  proxy = await startProxy(port);
  // Offline longer than this: a subscribe made offline must not time out meanwhile.
  const client = openClient(proxy.url, alice, { ackTimeoutMs: 500 });
  const notes = heard(client, "project:note");
  await client.subscribe("project:p-17");

  proxy.hold();
  proxy.cut();
  await waitForStatus(client, "reconnecting");
  let settled: string | undefined;
  const offline = client.subscribe("project:p-18").then(
    () => (settled = "resolved"),
    (error: TrussClientError) => (settled = error.code),
  );
  const withdrawn = client.subscribe("project:p-19");
  await client.unsubscribe("project:p-19");
  await expect(withdrawn).rejects.toMatchObject({ code: "CANCELLED" });
  await sleep(800);
  expect(settled).toBeUndefined();
  expect([...client.subscriptions]).toEqual(["project:p-17", "project:p-18"]);

  proxy.release();
  await offline;
  expect(settled).toBe("resolved");
  await waitFor(() => asked.filter((topic) => topic === "project:p-17").length === 2, { message: "the resubscription" });
  engine.toTopic("acme", "project:p-17").emit("project:note", { text: "p-17 after the cut" });
  engine.toTopic("acme", "project:p-18").emit("project:note", { text: "p-18 subscribed offline" });
  await waitFor(() => notes.length === 2, { message: "both topics' emits" });
  expect(notes).toEqual(expect.arrayContaining([{ text: "p-17 after the cut" }, { text: "p-18 subscribed offline" }]));
  expect(asked).not.toContain("project:p-19");
});

test("a topic revoked with unsubscribeUser reaches onDropped and is not asked for again after a reconnection", async () => {
  const { port, engine } = await start();
  proxy = await startProxy(port);
  const client = openClient(proxy.url, alice);
  const drops = recordDrops(client);
  const notes = heard(client, "project:note");
  await client.subscribe("project:p-17");
  await client.subscribe("project:control");

  expect(await engine.unsubscribeUser("acme", "alice", "project:p-17")).toEqual({ sockets: 1, complete: true });
  await waitFor(() => drops.length === 1, { message: "the drop" });
  expect(drops[0]).toMatchObject({ kind: "topic", topic: "project:p-17", error: { name: "TrussClientError", code: "ACCESS_REVOKED" } });
  expect([...client.subscriptions]).toEqual(["project:control"]);

  const back = reconnection(client);
  proxy.cut();
  await back;
  await waitFor(() => asked.filter((topic) => topic === "project:control").length === 2, { message: "the control topic's resubscription" });
  engine.toTopic("acme", "project:p-17").emit("project:note", { text: "revoked" });
  engine.toTopic("acme", "project:control").emit("project:note", { text: "control" });
  await waitFor(() => notes.length === 1, { message: "the control topic's emit" });
  expect(notes).toEqual([{ text: "control" }]);
  expect(asked.filter((topic) => topic === "project:p-17")).toHaveLength(1);
  expect(drops).toHaveLength(1);
});

test("a topic the policy refuses when the client subscribes again after a reconnection is dropped with FORBIDDEN", async () => {
  const { port } = await start();
  proxy = await startProxy(port);
  const client = openClient(proxy.url, alice);
  const drops = recordDrops(client);
  await client.subscribe("project:p-17");
  await client.subscribe("project:p-18");

  closedTopics.add("project:p-17");
  proxy.cut();
  await waitFor(() => drops.length === 1, { message: "the refused resubscription" });
  expect(drops[0]).toMatchObject({ kind: "topic", topic: "project:p-17", error: { code: "FORBIDDEN" } });
  expect([...client.subscriptions]).toEqual(["project:p-18"]);
  expect(client.status).toBe("connected");
});

test("disconnectUser with ACCESS_REVOKED closes the client for good, with that reason", async () => {
  const { url, engine } = await start();
  const client = openClient(url, alice);
  const changes: StatusChange[] = [];
  client.onStatus((_status, change) => changes.push(change));
  await client.subscribe("project:p-17");

  expect(await engine.disconnectUser("acme", "alice")).toEqual({ sockets: 1, complete: true });
  await waitForStatus(client, "closed");
  expect(changes.at(-1)).toMatchObject({ status: "closed", previous: "connected", reason: { code: "ACCESS_REVOKED" } });
  // With 20 ms backoff, a client that kept trying would be back many times over by now.
  await sleep(1500);
  expect(await connections()).toBe(1);
  expect(changes.map((change) => change.status)).toEqual(["connected", "closed"]);
  expect(client.subscriptions.size).toBe(0);
  await expect(client.subscribe("project:p-17")).rejects.toMatchObject({ code: "CLIENT_CLOSED" });
});

test("disconnectUser with FORBIDDEN closes too, and with AUTH_TOKEN_EXPIRED the client comes back with a new token", async () => {
  const { url, engine } = await start();
  const forbidden = openClient(url, alice);
  const renewing = openClient(url, bob, { getToken: () => signToken({ userId: "bob", companyId: "acme" }) });
  await Promise.all([waitForStatus(forbidden, "connected"), waitForStatus(renewing, "connected")]);
  const bobNotes = heard(renewing, "project:note");
  await renewing.subscribe("project:p-17");

  let closedBecause: TrussClientError | null = null;
  forbidden.onStatus((status, change) => {
    if (status === "closed") closedBecause = change.reason;
  });
  await engine.disconnectUser("acme", "alice", { code: "FORBIDDEN", message: "You left this company." });
  await waitForStatus(forbidden, "closed");
  expect(closedBecause).toMatchObject({ code: "FORBIDDEN", message: "You left this company." });
  const renewed = reconnection(renewing);
  await engine.disconnectUser("acme", "bob", { code: "AUTH_TOKEN_EXPIRED", message: "Your roles changed; sign in again." });
  await renewed;
  await sleep(300);
  expect(forbidden.status).toBe("closed");
  expect(await connections()).toBe(3);
  // And the renewed session has its topic back.
  await waitFor(() => asked.filter((topic) => topic === "project:p-17").length === 2, { message: "the resubscription" });
  engine.toTopic("acme", "project:p-17").emit("project:note", { text: "welcome back" });
  await waitFor(() => bobNotes.length === 1, { message: "the emit after renewal" });
});

test("documents.watch hears commits of watched documents only, and a re-watch reports what was missed offline", async () => {
  const { port, engine } = await start();
  await engine.documents.update("acme", "project", "tower-b", { baseVersion: 0, changes: { name: "Tower B", budget: 1_000_000, status: "planning" } });
  proxy = await startProxy(port);
  const client = openClient(proxy.url, alice);
  const updates: DocumentUpdated[] = [];
  client.documents.onUpdated((update) => void updates.push(update));

  expect(await client.documents.watch("project", "tower-b")).toMatchObject({ version: 1, data: { name: "Tower B" } });
  expect(client.documents.knownVersion("project", "tower-b")).toBe(1);
  await engine.documents.update("acme", "project", "tower-c", { baseVersion: 0, changes: { name: "Tower C" } });
  await engine.documents.update("acme", "project", "tower-b", { baseVersion: 1, changes: { status: "active" } }, "bob");
  await waitFor(() => updates.length === 1, { message: "the watched document's commit" });
  expect(updates[0]).toMatchObject({ id: "tower-b", version: 2, changedFields: ["status"], updatedBy: "bob" });

  proxy.hold();
  proxy.cut();
  await waitForStatus(client, "reconnecting");
  await engine.documents.update("acme", "project", "tower-b", { baseVersion: 2, changes: { budget: 1_200_000 } }, "bob");
  proxy.release();
  await waitFor(() => updates.length === 2, { message: "the version committed while offline" });
  expect(updates[1]).toMatchObject({ type: "project", id: "tower-b", version: 3, changedFields: ["budget"], data: { budget: 1_200_000, status: "active" } });
  expect(client.documents.knownVersion("project", "tower-b")).toBe(3);

  // Watched again on the new connection.
  await engine.documents.update("acme", "project", "tower-b", { baseVersion: 3, changes: { status: "done" } }, "bob");
  await waitFor(() => updates.length === 3, { message: "a commit after the reconnection" });
  expect(updates.map((update) => update.id)).toEqual(["tower-b", "tower-b", "tower-b"]);

  await client.documents.unwatch("project", "tower-b");
  await engine.documents.update("acme", "project", "tower-b", { baseVersion: 4, changes: { status: "archived" } }, "bob");
  await sleep(200);
  expect(updates).toHaveLength(3);
});

test("a refreshed token that no longer passes the policy drops the topic and the watch, and onDropped hears both", async () => {
  const { url, engine } = await start({ authExpiry: { warnBeforeMs: 10_000 } });
  let openRefresh!: () => void;
  const subscribed = new Promise<void>((resolve) => (openRefresh = resolve));
  let calls = 0;
  const client = openClient(url, alice, {
    getToken: async () => {
      calls += 1;
      if (calls === 1) return signToken({ userId: "alice", companyId: "acme" }, { expiresInSec: 5 });
      // The refresh waits until the subscriptions exist, then brings a role the policy refuses.
      await subscribed;
      return signToken({ userId: "alice", companyId: "acme", roles: ["guest"] });
    },
  });
  const drops = recordDrops(client);
  const errors: TrussClientError[] = [];
  client.onError((error) => errors.push(error));
  await client.subscribe("project:p-17");
  await client.documents.watch("project", "tower-b");
  openRefresh();

  await waitFor(() => drops.length === 2, { message: "both drops" });
  expect(drops).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ kind: "topic", topic: "project:p-17", error: expect.objectContaining({ code: "FORBIDDEN" }) }),
      expect.objectContaining({ kind: "document", type: "project", id: "tower-b", error: expect.objectContaining({ code: "FORBIDDEN" }) }),
    ]),
  );
  expect(client.subscriptions.size).toBe(0);
  expect(client.status).toBe("connected");
  expect(errors).toEqual([]);
  expect(await engine.metrics()).toMatch(/^truss_auth_refreshed_total 1$/m);
});
