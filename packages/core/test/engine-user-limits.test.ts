import { afterEach, describe, expect, test } from "vitest";
import { connectAs, connectError, createClient, request, signToken, startTestServer, waitFor, type TestServer } from "@truss/test-utils";
import type { Socket as ClientSocket } from "socket.io-client";
import type { ErrorPayload } from "@truss/protocol";

/**
 * Limits per user and per device, not only per socket: opening more sockets
 * must not multiply what one user may send, nor how many sockets one device
 * holds.
 */

let server: TestServer<any> | undefined;
const sockets: ClientSocket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await server?.close();
  server = undefined;
});

const alice = { userId: "alice", companyId: "acme" };
const bob = { userId: "bob", companyId: "acme" };

async function connect(claims: typeof alice, deviceId: string): Promise<ClientSocket> {
  const socket = await connectAs(server!.url, claims, { deviceId });
  sockets.push(socket);
  return socket;
}

/** Sends `count` acked events on each socket at once; resolves with every answer and how long the burst took. */
async function burst(on: readonly ClientSocket[], count: number, send: (socket: ClientSocket, index: number) => Promise<any>) {
  const startedAt = performance.now();
  const answers = await Promise.all(on.flatMap((socket) => Array.from({ length: count }, (_, index) => send(socket, index))));
  return { answers, seconds: (performance.now() - startedAt) / 1000 };
}

/** The most a token bucket of `perSecond` (and `capacity`) can let through in `seconds`. */
const mostAllowed = (perSecond: number, seconds: number, capacity = perSecond) => capacity + perSecond * seconds;

describe("sockets per device", () => {
  test("30 sockets of one deviceId: limits.maxSocketsPerDevice (16) get in, the rest are refused with TOO_MANY_CONNECTIONS", async () => {
    server = await startTestServer();
    const outcomes = Array.from({ length: 30 }, () => {
      const socket = createClient(server!.url, alice, { deviceId: "laptop" });
      sockets.push(socket);
      // A refusal comes at the handshake (`connect_error`) or, for handshakes that passed together, right after connecting.
      const outcome = { socket, refusal: undefined as ErrorPayload | undefined };
      socket.on("connect_error", (error: Error & { data?: ErrorPayload }) => (outcome.refusal = error.data));
      socket.on("error", (error: ErrorPayload) => (outcome.refusal = error));
      socket.connect();
      return outcome;
    });
    const refused = () => outcomes.filter((outcome) => outcome.refusal !== undefined);
    await waitFor(() => refused().length === 14 && outcomes.filter((o) => o.socket.connected).length === 16, {
      message: "14 sockets refused and 16 connected",
    });
    expect(new Set(refused().map((outcome) => outcome.refusal!.code))).toEqual(new Set(["TOO_MANY_CONNECTIONS"]));
    expect(refused()[0]!.refusal!.message).toMatch(/limits\.maxSocketsPerDevice/);
    expect(outcomes.filter((outcome) => outcome.socket.connected && outcome.refusal === undefined)).toHaveLength(16);

    // Once settled, a further socket is refused at the handshake.
    const late = await connectError(server.url, { auth: { token: signToken(alice), deviceId: "laptop" } });
    expect(late.data?.code).toBe("TOO_MANY_CONNECTIONS");
    // The cap is per device: another device of the same user, and another user, still get in.
    expect((await connect(alice, "phone")).connected).toBe(true);
    expect((await connect(bob, "laptop")).connected).toBe(true);
    // A socket that closes makes room for another.
    outcomes.find((outcome) => outcome.socket.connected)!.socket.close();
    const again = await waitFor(() => connectAs(server!.url, alice, { deviceId: "laptop" }).catch(() => undefined), { message: "room on the device" });
    sockets.push(again!);
    expect(await server.engine.metrics()).toMatch(/truss_auth_failures_total\{code="TOO_MANY_CONNECTIONS"\} \d+/);
  });

  test("limits.maxSocketsPerDevice is an option, checked like the others", async () => {
    server = await startTestServer({ limits: { maxSocketsPerDevice: 2 } });
    await connect(alice, "laptop");
    await connect(alice, "laptop");
    expect((await connectError(server.url, { auth: { token: signToken(alice), deviceId: "laptop" } })).data?.code).toBe("TOO_MANY_CONNECTIONS");
    await expect(startTestServer({ limits: { maxSocketsPerDevice: 0 } })).rejects.toThrow(/limits\.maxSocketsPerDevice/);
  });
});

describe("events per user", () => {
  const USER_RATE = 20;

  test("4 sockets of one user flooding share limits.userEventsPerSecond; a second user is not affected", async () => {
    // Each socket alone could send all of its events; together they may not.
    server = await startTestServer({ limits: { eventsPerSecond: 100, userEventsPerSecond: USER_RATE } });
    const flooders = await Promise.all(["tab-1", "tab-2", "tab-3", "tab-4"].map((tab) => connect(alice, tab)));
    const bystander = await connect(bob, "bob-pc");

    const [flood, calm] = await Promise.all([
      burst(flooders, 20, (socket) => request(socket, "presence:list", {})),
      burst([bystander], USER_RATE, (socket) => request(socket, "presence:list", {})),
    ]);
    const accepted = flood.answers.filter((answer) => answer.ok).length;
    const refusals = flood.answers.filter((answer) => !answer.ok).map((answer) => answer.error as ErrorPayload);
    expect(accepted).toBeGreaterThanOrEqual(USER_RATE);
    expect(accepted).toBeLessThanOrEqual(Math.floor(mostAllowed(USER_RATE, flood.seconds)));
    expect(new Set(refusals.map((refusal) => refusal.code))).toEqual(new Set(["RATE_LIMITED"]));
    expect(refusals[0]!.message).toMatch(/limits\.userEventsPerSecond/);
    expect(calm.answers.every((answer) => answer.ok)).toBe(true);
  });

  test("closing every socket and reconnecting does not buy a fresh budget", async () => {
    server = await startTestServer({ limits: { eventsPerSecond: 100, userEventsPerSecond: USER_RATE } });
    const startedAt = performance.now();
    const first = await connect(alice, "tab-1");
    const before = await burst([first], 2 * USER_RATE, (socket) => request(socket, "presence:list", {}));
    first.close();
    // Reconnect only once the server has seen the last socket go.
    await waitFor(async () => !(await server!.engine.isOnline("acme", "alice")), { message: "alice offline" });
    const second = await connect(alice, "tab-1");
    const after = await burst([second], 2 * USER_RATE, (socket) => request(socket, "presence:list", {}));
    const accepted = [...before.answers, ...after.answers].filter((answer) => answer.ok).length;
    expect(accepted).toBeLessThanOrEqual(Math.floor(mostAllowed(USER_RATE, (performance.now() - startedAt) / 1000)));
  });

  test("a user's budget is taken at their first event and let go once their last socket has left and it has refilled", async () => {
    server = await startTestServer({ limits: { eventsPerSecond: 100, userEventsPerSecond: USER_RATE } });
    const budgetedUsers = () => (server!.engine as unknown as { dispatcher: { budgetedUsers: number } }).dispatcher.budgetedUsers;
    const tabs = await Promise.all([connect(alice, "tab-1"), connect(alice, "tab-2"), connect(bob, "bob-pc")]);
    // An idle socket holds no budget: a full one is the same as none.
    expect(budgetedUsers()).toBe(0);
    expect((await request(tabs[2]!, "presence:list", {})).ok).toBe(true);
    await burst([tabs[0]!], 2 * USER_RATE, (socket) => request(socket, "presence:list", {}));
    expect(budgetedUsers()).toBe(2);
    tabs[0]!.close();
    tabs[2]!.close();
    // Bob's budget refills within a fraction of a second and goes. Alice still has a socket.
    await waitFor(() => budgetedUsers() === 1, { message: "bob's budget dropped" });
    tabs[1]!.close();
    await waitFor(() => budgetedUsers() === 0, { timeoutMs: 3_000, message: "alice's budget dropped once refilled" });
  });

  test("a connection that went quiet lets its budget go once it has refilled, and its next burst meets a full one", async () => {
    server = await startTestServer({ limits: { eventsPerSecond: 20, userEventsPerSecond: 1_000 } });
    type Internals = { dispatcher: { budgetedUsers: number; budgetedConnections: number; releaseFullBudgets(now?: number): void } };
    const { dispatcher } = server.engine as unknown as Internals;
    const [tab, other] = await Promise.all([connect(alice, "tab-1"), connect(bob, "bob-pc")]);
    const first = await burst([tab], 40, (socket) => request(socket, "presence:list", {}));
    expect(first.answers.filter((answer) => answer.ok).length).toBeLessThan(40);
    expect((await request(other, "presence:list", {})).ok).toBe(true);
    expect(dispatcher.budgetedConnections).toBe(2);
    // Still refilling: kept. A second later (20 events a second, a bucket of 20) both are full: let go, with the users' shares.
    dispatcher.releaseFullBudgets();
    expect(dispatcher.budgetedConnections).toBe(2);
    dispatcher.releaseFullBudgets(Date.now() + 1_100);
    expect(dispatcher.budgetedConnections).toBe(0);
    await waitFor(() => dispatcher.budgetedUsers === 0, { timeoutMs: 3_000, message: "the users' budgets dropped once refilled" });
    // The limit holds as before on the next burst, from a full bucket.
    const second = await burst([tab], 40, (socket) => request(socket, "presence:list", {}));
    const accepted = second.answers.filter((answer) => answer.ok).length;
    expect(accepted).toBeGreaterThanOrEqual(20);
    expect(accepted).toBeLessThan(40);
  });
});

describe("bytes per user", () => {
  test("sockets of one user creating 60 KB documents share limits.userBytesPerSecond", async () => {
    const bytesPerSecond = 200_000;
    server = await startTestServer({ limits: { eventsPerSecond: 1_000, userEventsPerSecond: 1_000, userBytesPerSecond: bytesPerSecond } });
    const flooders = await Promise.all(["tab-1", "tab-2", "tab-3", "tab-4"].map((tab) => connect(alice, tab)));
    const body = "x".repeat(60_000);
    const flood = await burst(flooders, 5, (socket, index) =>
      request(socket, "document:update", { type: "note", id: `${socket.id}-${index}`, baseVersion: 0, changes: { body } }),
    );
    const created = flood.answers.filter((answer) => answer.ok);
    const refusals = flood.answers.filter((answer) => !answer.ok).map((answer) => answer.error as ErrorPayload);
    expect(created.length).toBeGreaterThanOrEqual(1);
    expect(created.length).toBeLessThanOrEqual(Math.floor(mostAllowed(bytesPerSecond, flood.seconds) / body.length));
    expect(new Set(refusals.map((refusal) => refusal.code))).toEqual(new Set(["RATE_LIMITED"]));
    expect(refusals[0]!.message).toMatch(/limits\.userBytesPerSecond/);
  });

  test("the byte budget always lets one event of maxPayloadBytes through", async () => {
    server = await startTestServer({ limits: { maxPayloadBytes: 64 * 1024, userBytesPerSecond: 1_000 } });
    const socket = await connect(alice, "tab-1");
    const answer = await request(socket, "document:update", { type: "note", id: "n1", baseVersion: 0, changes: { body: "x".repeat(60_000) } });
    expect(answer.ok).toBe(true);
  });
});
