import { afterEach, expect, test } from "vitest";
import type { AuthorizePolicy } from "@truss/core";
import { signToken, sleep, waitFor, type TcpProxy, type TestClaims, type TestServer } from "@truss/test-utils";
import { localStorageOutboxStore, type StatusChange, type TrussClient, type TrussClientError } from "@truss/client";
import { alice, closeAll, openClient, reconnection, startProxy, startServer, waitForStatus } from "./helpers.js";
import { fakeStorage } from "./stream-helpers.js";

afterEach(closeAll);

/** The same report id in both companies: two documents. */
const REPORT = { type: "site-report", id: "r-1" };
/** Globex's accountant, signing in on the tab Alice just left. */
const globexBob = { userId: "bob", companyId: "globex" } satisfies TestClaims;

/** Every request the policy was asked about, as `user@company action`: what reached the server under whose name. */
let asked: string[] = [];
const recordingPolicy: AuthorizePolicy = (principal, request) => {
  asked.push(`${principal.userId}@${principal.companyId} ${request.action}`);
  return true;
};

/** A server where acme's report is at version 3 and globex's at version 5, behind a proxy the test can take away. */
async function start(): Promise<{ server: TestServer; proxy: TcpProxy }> {
  asked = [];
  const server = await startServer({ authorize: recordingPolicy, topics: { patterns: ["project:{projectId}"] } });
  for (const [version, notes] of ["a1", "a2", "acme's bid: 4.2M"].entries()) {
    await server.engine.documents.update("acme", REPORT.type, REPORT.id, { baseVersion: version, changes: { notes } });
  }
  for (let version = 0; version < 5; version++) {
    await server.engine.documents.update("globex", REPORT.type, REPORT.id, { baseVersion: version, changes: { notes: `globex ${version + 1}` } });
  }
  return { server, proxy: await startProxy(server.port) };
}

/** Takes the network away: open connections drop and new ones hang unanswered. */
function goOffline(network: TcpProxy) {
  network.hold();
  network.cut();
}

function record(client: TrussClient) {
  const errors: TrussClientError[] = [];
  const changes: StatusChange[] = [];
  client.onError((error) => errors.push(error));
  client.onStatus((_status, change) => changes.push(change));
  return { errors, changes };
}

test("a reconnection whose token names another user of another company ends the client: Alice's queued write stays hers, Bob sees nothing of acme", async () => {
  const { server, proxy } = await start();
  const storage = fakeStorage();
  const aliceOutbox = () => localStorageOutboxStore("truss:outbox:acme:alice", storage);
  // The browser's session: whoever is signed in now.
  let session = signToken(alice);
  const client = openClient(proxy.url, alice, { getToken: () => session, outbox: { store: aliceOutbox() } });
  const { errors, changes } = record(client);
  await waitForStatus(client, "connected");
  expect((await client.documents.watch(REPORT.type, REPORT.id))?.data).toEqual({ notes: "acme's bid: 4.2M" });
  await client.subscribe("project:tower-b");
  await client.presence.in({ topic: "project:tower-b" }).join({ editing: "notes" });
  const companyListed = new Promise((resolve) => client.presence.subscribe(resolve));
  await companyListed;

  // Alice signs out and Bob of globex signs in on the same tab as the network goes: the attempt that waits for the
  // network asked for the session's token, Bob's.
  session = signToken(globexBob);
  goOffline(proxy);
  await waitForStatus(client, "reconnecting");
  const queued = client.documents.update(REPORT.type, REPORT.id, { notes: "alice's offline edit" }).catch((error: TrussClientError) => error.code);
  // Not queued, so socket.io-client holds it in its buffer until a connection opens.
  const read = client.documents.get(REPORT.type, REPORT.id).catch((error: TrussClientError) => error.code);
  await waitFor(() => client.outbox.size === 1);
  asked = [];

  proxy.release();
  await waitForStatus(client, "closed");

  expect(changes.at(-1)).toMatchObject({ status: "closed", reason: { code: "AUTH_PRINCIPAL_MISMATCH" } });
  expect(errors.map((error) => error.code)).toContain("AUTH_PRINCIPAL_MISMATCH");
  expect(await queued).toBe("CLIENT_CLOSED");
  expect(await read).toBe("CLIENT_CLOSED");
  await sleep(200);
  // Nothing reached the server under Bob's name: no write, no read, no subscription or watch renewed.
  expect(asked).toEqual([]);
  expect([...server.engine.io!.of("/").sockets.values()]).toEqual([]);
  expect(await server.engine.metrics()).toContain('truss_auth_failures_total{code="AUTH_PRINCIPAL_MISMATCH"} 1');
  expect((await server.engine.documents.get("globex", REPORT.type, REPORT.id)).version).toBe(5);
  expect((await server.engine.documents.get("acme", REPORT.type, REPORT.id)).version).toBe(3);
  // Alice's write waits in her own store for her next sign-in.
  expect(aliceOutbox().load()).toMatchObject([{ kind: "document", ...REPORT, changes: { notes: "alice's offline edit" }, baseVersion: 3 }]);
  // And the client shows nothing of acme to whoever uses it now.
  expect(client.documents.snapshot(REPORT.type, REPORT.id)).toBeUndefined();
  expect(client.subscriptions.size).toBe(0);
  expect(client.outbox.pending).toEqual([]);
  expect(client.presence.current).toEqual([]);
  expect(client.presence.in({ topic: "project:tower-b" }).others).toEqual([]);
});

test.each([
  ["the same user id in another company", { userId: "alice", companyId: "globex" }],
  ["another user of the same company", { userId: "carol", companyId: "acme" }],
])("a reconnection as %s is refused too", async (_name, claims) => {
  const { server, proxy } = await start();
  let session = signToken(alice);
  const client = openClient(proxy.url, alice, { getToken: () => session });
  const { changes } = record(client);
  await waitForStatus(client, "connected");
  session = signToken(claims);
  goOffline(proxy);
  await waitForStatus(client, "reconnecting");
  proxy.release();
  await waitForStatus(client, "closed");
  expect(changes.at(-1)?.reason?.code).toBe("AUTH_PRINCIPAL_MISMATCH");
  expect(await server.engine.isOnline(claims.companyId, claims.userId)).toBe(false);
});

test("a reconnection with a renewed token of the same user goes on as before: the queued write commits, the watch and topic come back", async () => {
  const { server, proxy } = await start();
  let session = signToken(alice, { expiresInSec: 600 });
  const client = openClient(proxy.url, alice, { getToken: () => session });
  const { errors, changes } = record(client);
  await waitForStatus(client, "connected");
  await client.documents.watch(REPORT.type, REPORT.id);
  await client.subscribe("project:tower-b");

  const back = reconnection(client);
  session = signToken(alice, { expiresInSec: 1200 });
  goOffline(proxy);
  await waitForStatus(client, "reconnecting");
  const queued = client.documents.update(REPORT.type, REPORT.id, { notes: "alice's offline edit" });
  proxy.release();
  await back;

  expect(await queued).toMatchObject({ status: "applied", document: { version: 4, updatedBy: "alice" } });
  expect(client.documents.snapshot(REPORT.type, REPORT.id)).toMatchObject({ version: 4, data: { notes: "alice's offline edit" } });
  await waitFor(() => asked.filter((request) => request === "alice@acme topic:subscribe").length === 2, { message: "the topic subscribed again" });
  expect(changes.map((change) => change.status)).toEqual(["connected", "reconnecting", "connected"]);
  expect(errors.map((error) => error.code).filter((code) => code !== "DISCONNECTED" && code !== "CONNECTION_FAILED")).toEqual([]);
  expect((await server.engine.documents.get("globex", REPORT.type, REPORT.id)).version).toBe(5);
});
