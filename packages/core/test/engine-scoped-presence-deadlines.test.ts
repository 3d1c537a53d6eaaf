import { memoryScopedPresenceStore, type ScopedPresenceStore } from "@truss/core";
import { collectScopedPresence, connectAs, request, sleep, startTestServer, waitFor, type TestServer } from "@truss/test-utils";
import type { Socket } from "socket.io-client";
import { afterEach, expect, test } from "vitest";

/**
 * Scoped presence over a store whose writes land after `limits.storeTimeoutMs`:
 * a client told its join failed is not left listed, a leave or a disconnect
 * is not overtaken by the write it follows, a late state update does not
 * bring back a member that left, and a join whose listing failed is undone.
 * Real Socket.IO and socket.io-client.
 */

const BOUND_MS = 100;
/** How long a slow write takes to land: past the bound, so the client is answered first. */
const LANDS_AFTER_MS = 300;

let server: TestServer;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await server?.close();
});

const topic = { topic: "project:p-17" };

/** The in-memory store, wrapped (so its calls are timed), whose `method` answers late while `slow` is set. */
function slowStore(method: "put" | "list" = "put"): { store: ScopedPresenceStore; slow(on: boolean): void } {
  const memory = memoryScopedPresenceStore();
  let slow = false;
  const late = <T>(answer: () => Promise<T>): Promise<T> => (slow ? sleep(LANDS_AFTER_MS).then(answer) : answer());
  const store: ScopedPresenceStore = {
    ...memory,
    ...(method === "put" ? { put: (entry, ttlMs) => late(() => memory.put(entry, ttlMs)) } : { list: (companyId, scope, limit) => late(() => memory.list(companyId, scope, limit)) }),
  };
  return { store, slow: (on) => void (slow = on) };
}

async function subscribed(userId: string): Promise<Socket> {
  const socket = await connectAs(server.url, { userId, companyId: "acme", deviceId: `${userId}-phone` });
  sockets.push(socket);
  expect((await request(socket, "topic:subscribe", topic)).ok).toBe(true);
  return socket;
}

const listed = async () => (await server.engine.presence.in("acme", topic).list()).map((member) => member.userId);

test("a join answered STORE_UNAVAILABLE whose write lands later is taken back: never listed, never announced, and a retry joins", async () => {
  const { store, slow } = slowStore();
  server = await startTestServer({ authorize: () => true, scopedPresence: store, limits: { storeTimeoutMs: BOUND_MS } });
  const ann = await subscribed("ann");
  const ben = await subscribed("ben");
  expect(await request(ann, "presence:join", { scope: topic, state: {} })).toMatchObject({ ok: true });
  const annHeard = collectScopedPresence(ann);

  slow(true);
  expect(await request(ben, "presence:join", { scope: topic, state: { late: true } })).toMatchObject({ ok: false, error: { code: "STORE_UNAVAILABLE" } });
  slow(false);
  await sleep(LANDS_AFTER_MS + 100);
  expect(await listed()).toEqual(["ann"]);
  expect(annHeard).toEqual([]);

  const retried = await request(ben, "presence:join", { scope: topic, state: { retried: true } });
  expect(retried).toMatchObject({ ok: true, total: 2 });
  await waitFor(() => annHeard.length === 1, { message: "ann hears ben join" });
  expect(annHeard[0]).toMatchObject({ change: "joined", member: { userId: "ben", state: { retried: true } } });
});

test("a retry sent before the timed-out write lands waits for it and its taking back, so the store ends as the answers say", async () => {
  const { store, slow } = slowStore();
  server = await startTestServer({ authorize: () => true, scopedPresence: store, limits: { storeTimeoutMs: BOUND_MS } });
  const ann = await subscribed("ann");
  const annHeard = collectScopedPresence(ann);
  await request(ann, "presence:join", { scope: topic, state: {} });
  const ben = await subscribed("ben");

  slow(true);
  expect(await request(ben, "presence:join", { scope: topic, state: { first: true } })).toMatchObject({ ok: false, error: { code: "STORE_UNAVAILABLE" } });
  slow(false);
  // Its put starts only once the first has landed and been taken back, past this answer's own deadline.
  expect(await request(ben, "presence:join", { scope: topic, state: { retried: true } })).toMatchObject({ ok: false, error: { code: "STORE_UNAVAILABLE" } });
  await sleep(LANDS_AFTER_MS + 100);
  expect(await listed()).toEqual(["ann"]);
  expect(annHeard).toEqual([]);

  expect(await request(ben, "presence:join", { scope: topic, state: { third: true } })).toMatchObject({ ok: true, total: 2 });
  const members = await server.engine.presence.in("acme", topic).list();
  expect(members.map((member) => [member.userId, member.state])).toEqual([
    ["ann", {}],
    ["ben", { third: true }],
  ]);
  await waitFor(() => annHeard.length === 1, { message: "ann hears ben join" });
  expect(annHeard[0]).toMatchObject({ change: "joined", member: { userId: "ben", state: { third: true } } });
});

test("a disconnect while the join's write is still on its way leaves no member once the write lands", async () => {
  const { store, slow } = slowStore();
  server = await startTestServer({ authorize: () => true, scopedPresence: store, limits: { storeTimeoutMs: BOUND_MS } });
  const ann = await subscribed("ann");
  const ben = await subscribed("ben");
  await request(ann, "presence:join", { scope: topic, state: {} });

  slow(true);
  const answer = request(ben, "presence:join", { scope: topic, state: {} }).catch(() => "no answer");
  await sleep(BOUND_MS / 2);
  ben.close();
  slow(false);
  await answer;
  await sleep(LANDS_AFTER_MS + 100);
  expect(await listed()).toEqual(["ann"]);
});

test("a leave after a state update whose write lands late is not undone by it", async () => {
  const { store, slow } = slowStore();
  server = await startTestServer({ authorize: () => true, scopedPresence: store, limits: { storeTimeoutMs: BOUND_MS } });
  const ann = await subscribed("ann");
  const annHeard = collectScopedPresence(ann);
  const ben = await subscribed("ben");
  await request(ann, "presence:join", { scope: topic, state: {} });
  await request(ben, "presence:join", { scope: topic, state: { n: 0 } });
  await waitFor(() => annHeard.length === 1, { message: "ann hears ben join" });
  // Past the socket's update interval (100 ms at 10 a second), so the state goes out at once, while puts are slow.
  await sleep(100);

  slow(true);
  expect((await request(ben, "presence:set", { scope: topic, state: { n: 1 } })).ok).toBe(true);
  await sleep(BOUND_MS + 50);
  slow(false);
  expect((await request(ben, "presence:leave", { scope: topic })).ok).toBe(true);
  await sleep(LANDS_AFTER_MS + 100);
  expect(await listed()).toEqual(["ann"]);
  await waitFor(() => annHeard.some((change) => change.change === "left" && change.member.userId === "ben"), { message: "ann hears ben leave" });
});

test("a join whose write landed but whose listing failed is taken back, and the scope hears it leave", async () => {
  const { store, slow } = slowStore("list");
  server = await startTestServer({ authorize: () => true, scopedPresence: store, limits: { storeTimeoutMs: BOUND_MS } });
  const ann = await subscribed("ann");
  const annHeard = collectScopedPresence(ann);
  await request(ann, "presence:join", { scope: topic, state: {} });
  const ben = await subscribed("ben");

  slow(true);
  expect(await request(ben, "presence:join", { scope: topic, state: {} })).toMatchObject({ ok: false, error: { code: "STORE_UNAVAILABLE" } });
  slow(false);
  // Announced when its put landed, so it is announced leaving (a join and a leave in one batch window go out as the leave).
  await waitFor(() => annHeard.some((change) => change.change === "left" && change.member.userId === "ben"), { message: "ann hears ben leave" });
  expect(await listed()).toEqual(["ann"]);
  // Not held either: presence:set answers as for a socket that never joined.
  expect(await request(ben, "presence:set", { scope: topic, state: { n: 1 } })).toMatchObject({ ok: false, error: { code: "NOT_FOUND" } });
});
