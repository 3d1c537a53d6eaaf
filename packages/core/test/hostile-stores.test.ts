/**
 * Every store method, misbehaving every way a contributed store can: the
 * engine answers with a coded error (or carries on, where the store is best
 * effort), no promise rejection goes unhandled and nothing is thrown out of a
 * timer, and once the store behaves again the engine serves as before.
 *
 * The conformance suite proves that a store keeps its contract; this file
 * proves what the engine does when one does not (a bug in a contributed store,
 * a driver that answers `null` mid-failover, a reply of the wrong shape).
 * Real Socket.IO on a real HTTP server, socket.io-client on the other side;
 * the stores are the in-memory ones, each method of one of them swapped for a
 * misbehaving one while a workload that reaches every store method runs.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import type { Socket as ClientSocket } from "socket.io-client";
import {
  memoryDocumentStore,
  memoryInboxStore,
  memoryPresenceStore,
  memoryRevocationStore,
  memoryScopedPresenceStore,
  memoryStreamStore,
} from "@truss/core";
import {
  askCoded as ask,
  callCoded as call,
  connectedOrRefused,
  createClient,
  eachMisbehaviour,
  misbehave,
  recordUnhandled,
  servesAgain,
  signToken,
  sleep,
  startTestServer,
  type Misbehaviour,
  type TestServer,
  type UnhandledRecord,
} from "@truss/test-utils";

/** The ways a store method misbehaves here: the answers a store can give (a store is not handed thenables to return). */
const MODES: readonly Misbehaviour[] = ["throws", "rejects", "null", "empty", "booby-trapped", "hangs"];

/** The misbehaving method, if any: set by a case, cleared before the health check. */
const fault: { store: string | null; method: string | null; mode: Misbehaviour | null; hits: number } = { store: null, method: null, mode: null, hits: 0 };

/** Misbehaves as `fault` says, counting the hit (a case whose method was never called proves nothing). */
function hit(where: string): unknown {
  fault.hits += 1;
  return misbehave(fault.mode!, where);
}

/** The store with each of its methods able to misbehave when `fault` names it. */
function hostile<T extends object>(name: string, store: T): T {
  const wrapped: Record<string, unknown> = {};
  for (const [method, value] of Object.entries(store)) {
    if (typeof value !== "function") {
      wrapped[method] = value;
      continue;
    }
    wrapped[method] = (...args: unknown[]) =>
      fault.store === name && fault.method === method ? hit(`${name}.${method}`) : (value as (...a: unknown[]) => unknown).apply(store, args);
  }
  return wrapped as T;
}

const stores = {
  presence: memoryPresenceStore(),
  scopedPresence: memoryScopedPresenceStore(),
  inbox: memoryInboxStore(),
  documents: memoryDocumentStore(),
  streams: memoryStreamStore(),
  revocations: memoryRevocationStore(),
};
const methodsOf = (store: object) => Object.entries(store).filter(([, value]) => typeof value === "function").map(([method]) => method);

const alice = { userId: "alice", companyId: "acme", roles: ["member"] };
const bob = { userId: "bob", companyId: "acme", roles: ["member"] };
const note = { type: "note", id: "n-1" };

let server: TestServer<any>;
let unhandled: UnhandledRecord;
const undeliveredCalls: unknown[] = [];
const open: ClientSocket[] = [];
/** The company stream's epoch each socket was told at connect. */
const epochs = new WeakMap<ClientSocket, string>();

beforeAll(async () => {
  unhandled = recordUnhandled();
  server = await startTestServer({
    presence: hostile("presence", stores.presence),
    scopedPresence: hostile("scopedPresence", stores.scopedPresence),
    inbox: hostile("inbox", stores.inbox),
    documents: hostile("documents", stores.documents),
    streams: hostile("streams", stores.streams),
    revocations: hostile("revocations", stores.revocations),
    topics: { patterns: ["project:{projectId}"] },
    // Short timers, so the background paths (heartbeats, sweeps, revocation polls, undelivered claims) run during each case.
    presenceTiming: { heartbeatIntervalMs: 40, sweepIntervalMs: 40, ttlMs: 200 },
    revocationTiming: { pollIntervalMs: 40 },
    undelivered: { afterMs: 20, pollIntervalMs: 20, handler: (call) => void undeliveredCalls.push(call) },
    // A method that hangs fails after this long; the wrapped stores are not the built-in ones, so their calls are timed.
    limits: { storeTimeoutMs: 100 },
  });
});

afterEach(() => {
  for (const socket of open.splice(0)) socket.close();
  fault.store = fault.method = fault.mode = null;
});

afterAll(async () => {
  await server?.close();
  unhandled.stop();
});

/** Connects, or resolves with `null` after a coded refusal. */
function connect(claims: typeof alice, deviceId: string, problems: string[]): Promise<ClientSocket | null> {
  const socket = createClient(server.url, { ...claims, deviceId });
  open.push(socket);
  socket.on("stream:start", (start: { stream: string; epoch: string }) => void (start.stream === "company" && epochs.set(socket, start.epoch)));
  return connectedOrRefused(socket, claims.userId, problems);
}

/** A workload that reaches every store method: connect, each protocol request, the server API, background timers, disconnect. */
async function workload(problems: string[]): Promise<void> {
  const phone = await connect(alice, "phone", problems);
  const laptop = await connect(bob, "laptop", problems);
  await call("toUser", () => server.engine.toUser("acme", "alice").emit("expense:approved", { id: "e-1" }), problems);
  // Carol has no device online: the undelivered poll claims her message, calls the handler and settles the call.
  await call("toUser (offline)", () => server.engine.toUser("acme", "carol").emit("expense:approved", { id: "e-2" }), problems);
  await call("toCompany", () => server.engine.toCompany("acme").emit("stock:updated", { sku: "s-1" }), problems);
  await call("toTopic", () => server.engine.toTopic("acme", "project:p1").emit("project:updated", { id: "p1" }), problems);
  await call("documents.update", () => server.engine.documents.update("acme", note.type, note.id, { baseVersion: 0, changes: { title: "site diary" } }), problems);
  await call("documents.get", () => server.engine.documents.get("acme", note.type, note.id), problems);
  await call("documents.history", () => server.engine.documents.history("acme", note.type, note.id), problems);
  await call("documents.rollback", () => server.engine.documents.rollback("acme", note.type, note.id, 1), problems);
  await call("isOnline", () => server.engine.isOnline("acme", "alice"), problems);
  await call("presence", () => server.engine.presence("acme"), problems);
  await call("presence.in", () => server.engine.presence.in("acme", note).list(), problems);
  await call("health", () => server.engine.health(), problems);
  await call("metrics", () => server.engine.metrics(), problems);
  for (const socket of [phone, laptop]) {
    if (!socket) continue;
    // stream:start came with the connection, if the stream store answered.
    const epoch = epochs.get(socket) ?? "unknown";
    await ask(socket, "presence:list", { follow: true }, problems);
    await ask(socket, "topic:subscribe", { topic: "project:p1" }, problems);
    await ask(socket, "stream:read", { stream: "company", epoch, after: 0 }, problems);
    const got = await ask(socket, "document:get", note, problems);
    const version = typeof got?.document?.version === "number" ? got.document.version : 0;
    await ask(socket, "document:update", { ...note, baseVersion: version, changes: { status: socket === phone ? "open" : "closed" } }, problems);
    // With a mutation id, as @truss/client's outbox sends it, on a base newer than the latest: before refusing it,
    // the engine asks the store what it knows of the mutation (a resend of one that committed is answered as committed).
    await ask(socket, "document:update", { ...note, baseVersion: 1_000_000, changes: { crew: 4 }, mutationId: `m-${Date.now()}` }, problems);
    await ask(socket, "document:history", note, problems);
    await ask(socket, "document:rollback", { ...note, toVersion: 1 }, problems);
    await ask(socket, "document:watch", note, problems);
    await ask(socket, "presence:join", { scope: note, state: { editing: true } }, problems);
    await ask(socket, "presence:set", { scope: note, state: { editing: false } }, problems);
    await ask(socket, "presence:members", { scope: note }, problems);
    // The phone stays in the scope (and watching) through the timers' turn, so its heartbeat runs; it leaves by disconnecting.
    if (socket === laptop) await ask(socket, "presence:leave", { scope: note }, problems);
    if (socket === laptop) await ask(socket, "document:unwatch", note, problems);
    await ask(socket, "topic:unsubscribe", { topic: "project:p1" }, problems);
    await ask(socket, "inbox:ack", { ids: [`${Date.now()}-0`] }, problems);
    await ask(socket, "auth:refresh", { token: signToken(socket === phone ? alice : bob, { expiresInSec: 600 }) }, problems);
  }
  await call("disconnectUser", () => server.engine.disconnectUser("acme", "carol"), problems);
  await call("unsubscribeUser", () => server.engine.unsubscribeUser("acme", "carol", "project:p1"), problems);
  // The timers' turn: heartbeats, sweeps, revocation polls and undelivered claims run every 20 to 40 ms, so each runs twice or more.
  await sleep(100);
  phone?.disconnect();
  laptop?.disconnect();
  await sleep(40);
}

describe.each(Object.entries(stores))("the %s store misbehaving", (name, store) => {
  test.each(methodsOf(store))(`%s, every way: coded answers, nothing unhandled, served again after`, async (method) => {
    const failures = await eachMisbehaviour(MODES, unhandled, async (mode, problems) => {
      Object.assign(fault, { store: name, method, mode, hits: 0 });
      await workload(problems);
      if (fault.hits === 0) problems.push("the method was never called during the fault");
      fault.store = fault.method = fault.mode = null;
      problems.push(...(await servesAgain(server, alice, note)));
      for (const socket of open.splice(0)) socket.close();
    });
    expect(failures).toEqual([]);
  });
});
