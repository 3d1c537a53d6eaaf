import { memoryPresenceStore, memoryRevocationStore, type PresenceStore, type RevocationStore } from "@truss/core";
import {
  collect,
  connectAs,
  connectError,
  createClient,
  open,
  request,
  signToken,
  signTokenAfter,
  startTestServer,
  waitFor,
  type TestClaims,
  type TestServer,
} from "@truss/test-utils";
import type { Socket as ClientSocket } from "socket.io-client";
import { afterEach, describe, expect, test } from "vitest";

/**
 * Revocations that outlive the moment they were made: a token issued before
 * `disconnectUser` is refused at the handshake and on `auth:refresh`, a
 * revocation reaches a node that only shares the store (no adapter between
 * them, as a node cut off from Redis pub/sub), and neither a handshake nor a
 * `topic:subscribe` that was in flight when the revocation came ends up in.
 */

const alice = { userId: "alice", companyId: "acme" };
const servers: TestServer[] = [];
const sockets: ClientSocket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(options: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const server = await startTestServer(options);
  servers.push(server);
  return server;
}

async function connect(server: TestServer, claims: TestClaims, token?: string): Promise<ClientSocket> {
  const socket = await connectAs(server.url, claims, token === undefined ? {} : { token });
  sockets.push(socket);
  return socket;
}

/** Resolves when a socket is disconnected, with the `error` events it received. */
function whenGone(socket: ClientSocket): Promise<unknown[]> {
  const errors = collect(socket, "error");
  return new Promise((resolve) => (socket.disconnected ? resolve(errors) : socket.once("disconnect", () => resolve(errors))));
}

describe("tokens issued before a revocation", () => {
  test("are refused at the handshake with the revocation's code; a token issued after it gets in", async () => {
    const server = await start();
    const oldToken = signToken(alice);
    await connect(server, alice, oldToken);
    const revokedAt = Date.now();
    await server.engine.disconnectUser("acme", "alice", { message: "Removed from Acme." });

    const refusal = await connectError(server.url, { auth: { token: oldToken } });
    expect(refusal.data).toEqual({ code: "ACCESS_REVOKED", message: "Removed from Acme." });
    expect((await connect(server, alice, await signTokenAfter(revokedAt, alice))).connected).toBe(true);
    // Another user of the company, and the same user id in another company, are untouched.
    expect((await connect(server, { userId: "bob", companyId: "acme" })).connected).toBe(true);
    expect((await connect(server, { userId: "alice", companyId: "globex" })).connected).toBe(true);
    expect(await server.engine.metrics()).toMatch(/truss_auth_failures_total\{code="ACCESS_REVOKED"\} 1/);
  });

  test("with AUTH_TOKEN_EXPIRED the old token is told to renew, and the renewed one gets in", async () => {
    const server = await start();
    const oldToken = signToken(alice);
    await connect(server, alice, oldToken);
    const revokedAt = Date.now();
    await server.engine.disconnectUser("acme", "alice", { code: "AUTH_TOKEN_EXPIRED", message: "Your roles changed; sign in again." });
    expect((await connectError(server.url, { auth: { token: oldToken } })).data?.code).toBe("AUTH_TOKEN_EXPIRED");
    expect((await connect(server, alice, await signTokenAfter(revokedAt, alice))).connected).toBe(true);
  });

  test("are refused on auth:refresh", async () => {
    const server = await start();
    const oldToken = signToken(alice);
    const revokedAt = Date.now();
    await server.engine.disconnectUser("acme", "alice");
    const socket = await connect(server, alice, await signTokenAfter(revokedAt, alice));
    expect(await request(socket, "auth:refresh", { token: oldToken })).toMatchObject({ ok: false, error: { code: "ACCESS_REVOKED" } });
    expect(await request(socket, "auth:refresh", { token: signToken(alice) })).toMatchObject({ ok: true });
    expect(socket.connected).toBe(true);
  });
});

describe("a node that shares the revocation store but never heard the revocation", () => {
  // Two engines on one store and no adapter between them: node B hears
  // nothing from A, as a node whose Redis subscription was cut.
  const pair = async (options: Parameters<typeof startTestServer>[0] = {}) => {
    const shared = { ...options, revocations: memoryRevocationStore(), revocationTiming: { pollIntervalMs: 200 } };
    return [await start(shared), await start(shared)] as const;
  };

  test("disconnects the user's sessions that began before it at its next read of the store, and refuses the old token", async () => {
    const [nodeA, nodeB] = await pair();
    const oldToken = signToken(alice);
    const onB = await connect(nodeB, alice, oldToken);
    const bystander = await connect(nodeB, { userId: "bob", companyId: "acme" });
    const gone = whenGone(onB);
    const revokedAt = Date.now();
    expect(await nodeA.engine.disconnectUser("acme", "alice")).toEqual({ sockets: 0, complete: true });

    expect(await gone).toEqual([{ code: "ACCESS_REVOKED", message: "Your access to this company was revoked." }]);
    expect(Date.now() - revokedAt).toBeLessThan(2_000);
    expect(bystander.connected).toBe(true);
    expect((await connectError(nodeB.url, { auth: { token: oldToken } })).data?.code).toBe("ACCESS_REVOKED");
    // A session that began after the revocation, with a token issued after it, stays through B's later reads.
    const renewed = await connect(nodeB, alice, await signTokenAfter(revokedAt, alice));
    const stays = collect(renewed, "error");
    const reads = await readsOf(nodeB, 2);
    expect(reads).toBeGreaterThanOrEqual(2);
    expect(stays).toEqual([]);
    expect(renewed.connected).toBe(true);
  });

  test("drops a revoked topic from the sockets whose token predates it, and refuses the old token's subscribe", async () => {
    const [nodeA, nodeB] = await pair({ authorize: () => true, topics: { patterns: ["project:{projectId}"] } });
    const oldToken = signToken(alice);
    const onB = await connect(nodeB, alice, oldToken);
    expect(await request(onB, "topic:subscribe", { topic: "project:p1" })).toMatchObject({ ok: true });
    const dropped = collect(onB, "topic:dropped");
    const revokedAt = Date.now();
    await nodeA.engine.unsubscribeUser("acme", "alice", "project:p1");

    await waitFor(() => dropped.length === 1, { timeoutMs: 2_000, message: "the topic dropped on B" });
    expect(dropped).toEqual([{ topic: "project:p1", error: { code: "ACCESS_REVOKED", message: 'Your access to "project:p1" was revoked.' } }]);
    expect(await request(onB, "topic:subscribe", { topic: "project:p1" })).toMatchObject({ ok: false, error: { code: "ACCESS_REVOKED" } });
    expect(onB.connected).toBe(true);
    const renewed = await connect(nodeB, alice, await signTokenAfter(revokedAt, alice));
    expect(await request(renewed, "topic:subscribe", { topic: "project:p1" })).toMatchObject({ ok: true });
  });

  test("a revocation the store refused is stored again once it answers, and reaches the other node then", async () => {
    const shared = memoryRevocationStore();
    let down = true;
    const flaky: RevocationStore = {
      add: (record) => (down ? Promise.reject(new Error("connect ECONNREFUSED")) : shared.add(record)),
      forUser: (user) => shared.forUser(user),
      since: (cursor, limit) => shared.since(cursor, limit),
    };
    const nodeA = await start({ revocations: flaky, revocationTiming: { pollIntervalMs: 200 } });
    const nodeB = await start({ revocations: shared, revocationTiming: { pollIntervalMs: 200 } });
    const onB = await connect(nodeB, alice);
    const gone = whenGone(onB);
    expect(await nodeA.engine.disconnectUser("acme", "alice")).toEqual({ sockets: 0, complete: false });
    down = false;
    expect(await gone).toEqual([{ code: "ACCESS_REVOKED", message: expect.any(String) }]);
  });
});

describe("races", () => {
  test("a handshake past its revocation check when disconnectUser came is told the revocation as it joins", async () => {
    const presence = memoryPresenceStore();
    let held: (() => void) | undefined;
    // The device cap's read is the handshake's last step, after the revocation check: hold it there.
    const holdingPresence: PresenceStore = Object.assign(Object.create(presence) as PresenceStore, {
      deviceIds: async (companyId: string, userId: string) => {
        if (userId === "alice") await new Promise<void>((resolve) => (held = resolve));
        return presence.deviceIds(companyId, userId);
      },
    });
    // No read of the store during the test: only the check as the socket joins can act.
    const server = await start({ presence: holdingPresence, revocationTiming: { pollIntervalMs: 60_000 } });
    const late = createClient(server.url, { ...alice, deviceId: "late-phone" });
    sockets.push(late);
    const errors = collect(late, "error");
    const joined = open(late);
    await waitFor(() => held !== undefined, { message: "the handshake's device count" });
    expect(await server.engine.disconnectUser("acme", "alice")).toEqual({ sockets: 0, complete: true });
    held!();
    await joined;
    await waitFor(() => late.disconnected, { message: "the late device disconnected as it joined" });
    expect(errors).toEqual([{ code: "ACCESS_REVOKED", message: "Your access to this company was revoked." }]);
  });

  test("a topic:subscribe whose policy check was running when unsubscribeUser came is refused, and hears nothing", async () => {
    let decide: ((allowed: boolean) => void) | undefined;
    const server = await start({
      topics: { patterns: ["project:{projectId}"] },
      authorize: (_principal, request) => (request.action === "topic:subscribe" ? new Promise<boolean>((resolve) => (decide = resolve)) : true),
    });
    const socket = await connect(server, alice);
    const heard = collect(socket, "project:updated");
    const subscribing = request(socket, "topic:subscribe", { topic: "project:p1" });
    await waitFor(() => decide !== undefined, { message: "the policy asked" });
    expect(await server.engine.unsubscribeUser("acme", "alice", "project:p1")).toEqual({ sockets: 0, complete: true });
    decide!(true);
    expect(await subscribing).toMatchObject({ ok: false, error: { code: "ACCESS_REVOKED" } });
    const control = await connect(server, { userId: "bob", companyId: "acme" });
    const controlHeard = collect(control, "project:updated");
    decide = undefined;
    const bobSubscribing = request(control, "topic:subscribe", { topic: "project:p1" });
    await waitFor(() => decide !== undefined);
    decide!(true);
    expect(await bobSubscribing).toMatchObject({ ok: true });
    await server.engine.toTopic("acme", "project:p1").emit("project:updated", { id: "p1" });
    await waitFor(() => controlHeard.length === 1, { message: "bob hears the topic" });
    expect(heard).toEqual([]);
  });
});

/**
 * Waits until node `server` has read the store `count` more times, by its
 * `since` calls in the store-call histogram.
 */
async function readsOf(server: TestServer, count: number): Promise<number> {
  const reads = async () => Number(/truss_store_call_duration_seconds_count\{store="revocations",operation="since"\} (\d+)/.exec(await server.engine.metrics())?.[1] ?? 0);
  const before = await reads();
  await waitFor(async () => (await reads()) >= before + count, { message: `${count} more reads of the store` });
  return (await reads()) - before;
}
