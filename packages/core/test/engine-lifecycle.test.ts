import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server } from "socket.io";
import { expect, test } from "vitest";
import { createRealtimeEngine, memoryDocumentStore, memoryInboxStore, memoryPresenceStore, memoryScopedPresenceStore, memoryStreamStore } from "@truss/core";
import { collect, connectAs, expectNoNewHandles, handleCounts, request, sleep, startTestServer, testAuth, waitFor, withTimeout } from "@truss/test-utils";

const alice = { userId: "alice", companyId: "acme" };

test("bind() serves Truss on an existing Socket.IO server beside the application's own namespace", async () => {
  const http = createServer();
  const io = new Server(http);
  io.of("/chat").on("connection", (socket) => socket.on("ping", (ack: (v: string) => void) => ack("pong")));
  const engine = createRealtimeEngine({ auth: testAuth(), logger: false });
  engine.bind(io);
  http.listen(0, "127.0.0.1");
  await once(http, "listening");
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;

  const socket = await connectAs(url, alice);
  const projects = collect(socket, "project:updated");
  engine.toCompany("acme").emit("project:updated", { id: "p1" });
  await waitFor(() => projects.length === 1);
  expect((await request(socket, "presence:list", {})).users).toHaveLength(1);

  const { io: connect } = await import("socket.io-client");
  const chat = connect(`${url}/chat`, { transports: ["websocket"], forceNew: true });
  expect(await chat.timeout(2000).emitWithAck("ping")).toBe("pong");
  chat.close();

  expect(() => engine.bind(io)).toThrow(/already attached/);
  await engine.close();
  await new Promise((resolve) => io.close(resolve));
});

test("close() leaves no timer, socket or server of the engine's behind", async () => {
  const before = handleCounts();
  const http = createServer();
  const presence = memoryPresenceStore();
  let backgroundCalls = 0;
  const countingPresence = {
    ...presence,
    connect: presence.connect.bind(presence),
    disconnect: presence.disconnect.bind(presence),
    isOnline: presence.isOnline.bind(presence),
    list: presence.list.bind(presence),
    heartbeat: (...args: Parameters<typeof presence.heartbeat>) => (backgroundCalls++, presence.heartbeat(...args)),
    sweepExpired: () => (backgroundCalls++, presence.sweepExpired()),
  };
  const engine = createRealtimeEngine({ auth: testAuth(), logger: false, presence: countingPresence, presenceTiming: { ttlMs: 300 } });
  engine.attach(http);
  http.listen(0, "127.0.0.1");
  await once(http, "listening");
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const sockets = await Promise.all([connectAs(url, alice), connectAs(url, { userId: "bob", companyId: "acme" }, { transports: ["polling"] })]);
  await engine.toUser("acme", "alice").emit("notification:new", { text: "hello" });

  await waitFor(() => backgroundCalls > 0, { message: "heartbeats while running" });
  await engine.close();
  const callsAtClose = backgroundCalls;
  await sleep(400);
  expect(backgroundCalls).toBe(callsAtClose);
  // The HTTP server is the application's; the engine leaves it open.
  expect(http.listening).toBe(true);
  await new Promise((resolve) => http.close(resolve));
  for (const socket of sockets) socket.close();
  await expectNoNewHandles(before);
});

test("once close() has started, sends and document writes reject SERVER_SHUTTING_DOWN and store nothing, a broadcast without a key resolves null; reads go on", async () => {
  const inbox = memoryInboxStore();
  const streams = memoryStreamStore();
  const documents = memoryDocumentStore();
  const server = await startTestServer({ inbox, streams, documents });
  const { engine } = server;
  const note = ["acme", "note", "n-1"] as const;
  await engine.documents.update(...note, { baseVersion: 0, changes: { title: "site diary" } });
  const writes = () => [
    engine.toUser("acme", "alice").emit("expense:approved", { id: "e-1" }),
    engine.toCompany("acme").emit("stock:updated", { sku: "s-1" }, { idempotencyKey: "row-1" }),
    engine.toTopic("acme", "project:p1").emit("project:updated", { id: "p1" }, { idempotencyKey: "row-2" }),
    engine.documents.update(...note, { baseVersion: 1, changes: { status: "open" } }),
    engine.documents.rollback(...note, 1),
  ];
  // Without a key a broadcast never rejects: a route that fires and forgets it must not end the process at shutdown.
  const unkeyed = () => [engine.toCompany("acme").emit("stock:updated", { sku: "s-1" }), engine.toTopic("acme", "project:p1").emit("project:updated", { id: "p1" })];

  const closing = server.close();
  // Right at the call, while the engine is still closing, and once it has closed.
  const during = writes();
  const droppedDuring = unkeyed();
  await closing;
  for (const write of [...during, ...writes()]) await expect(write).rejects.toMatchObject({ code: "SERVER_SHUTTING_DOWN" });
  for (const dropped of [...droppedDuring, ...unkeyed()]) expect(await dropped).toBeNull();
  expect(await inbox.read({ companyId: "acme", userId: "alice" }, null, 10)).toEqual([]);
  for (const stream of ["company", "topic:project:p1"]) expect(await streams.read({ companyId: "acme", stream }, 0, 10)).toMatchObject({ entries: [] });
  expect(await engine.documents.get(...note)).toMatchObject({ version: 1, data: { title: "site diary" } });
});

test("toCompany before attach explains what to do", () => {
  const engine = createRealtimeEngine({ auth: testAuth(), logger: false });
  expect(() => engine.toCompany("acme").emit("project:updated", {})).toThrow(/attach/);
});

test("the engine refuses to start without auth, and with nonsense limits", () => {
  expect(() => createRealtimeEngine({} as never)).toThrow(/auth/);
  expect(() => createRealtimeEngine({ auth: testAuth(), limits: { eventsPerSecond: 0 } })).toThrow(/eventsPerSecond/);
  expect(() => createRealtimeEngine({ auth: { secret: "s", algorithms: [] } })).toThrow(/algorithms/);
});

test("a second engine attached to the same server and path is refused at once; the first keeps serving WebSockets", async () => {
  const http = createServer();
  const first = createRealtimeEngine({ auth: testAuth(), logger: false });
  first.attach(http);
  // Two modules that each mount Truss: both Engine.IO servers would answer every upgrade, and ws would throw on the second.
  const second = createRealtimeEngine({ auth: testAuth(), logger: false });
  expect(() => second.attach(http)).toThrow(/already serves Socket.IO at \/socket\.io/);
  // Another path on the same server is another Socket.IO server.
  const elsewhere = createRealtimeEngine({ auth: testAuth(), logger: false, socketIo: { path: "/realtime-2" } });
  elsewhere.attach(http);
  http.listen(0, "127.0.0.1");
  await once(http, "listening");
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const socket = await connectAs(url, alice);
  expect((await request(socket, "presence:list", {})).ok).toBe(true);
  socket.close();
  await Promise.all([first.close(), second.close(), elsewhere.close()]);
  await new Promise((resolve) => http.close(resolve));
});

test("admitted sockets do not keep their handshake request alive (websocket and polling)", async () => {
  const http = createServer();
  const engine = createRealtimeEngine({ auth: testAuth(), logger: false });
  const io = engine.attach(http);
  http.listen(0, "127.0.0.1");
  await once(http, "listening");
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const clients = await Promise.all([connectAs(url, alice), connectAs(url, { userId: "bob", companyId: "acme" }, { transports: ["polling"] })]);
  const sockets = await io.fetchSockets();
  expect(sockets).toHaveLength(2);
  for (const socket of io.of("/").sockets.values()) {
    expect(socket.conn.request).toBeNull();
    // What Truss reads later (auth:refresh) survives in the handshake copy.
    expect(socket.handshake.headers.host).toMatch(/^127\.0\.0\.1:/);
  }
  expect((await request(clients[0]!, "presence:list", {})).ok).toBe(true);
  for (const client of clients) client.close();
  await engine.close();
  await new Promise((resolve) => http.close(resolve));
});

test("a presence store whose answers make the engine throw is logged, and the engine serves and closes as before", async () => {
  const presence = memoryPresenceStore();
  const warnings: unknown[][] = [];
  // A contributed store with a bug: its answers throw when read.
  const brokenAnswer = {
    get userId(): string {
      throw new Error("broken transition");
    },
  };
  const server = await startTestServer({
    logger: { warn: (...args: unknown[]) => void warnings.push(args), error: () => undefined },
    presence: {
      ...presence,
      connect: async () => brokenAnswer as never,
      disconnect: async () => brokenAnswer as never,
      // Not a list of transitions at all.
      heartbeat: async () => 42 as never,
      sweepExpired: async () => [brokenAnswer] as never,
    },
    // Scoped presence sweeps on the same timing.
    scopedPresence: { ...memoryScopedPresenceStore(), sweepExpired: async () => 42 as never },
    presenceTiming: { ttlMs: 3000, heartbeatIntervalMs: 100, sweepIntervalMs: 100 },
  });
  const logged = (message: string) => warnings.filter(([text]) => text === message);
  try {
    const socket = await connectAs(server.url, alice);
    await waitFor(() => logged("presence connect could not be announced").length === 1, { message: "the connect's failure logged" });
    expect(logged("presence connect could not be announced")[0]![1]).toEqual({ error: "broken transition" });
    const timed = ["presence heartbeat", "presence sweepExpired", "scoped presence scopeSweep"].map((operation) => `${operation} could not be announced`);
    await waitFor(() => timed.every((message) => logged(message).length > 0), { message: "the heartbeats' and the sweeps' failures logged" });
    // The connection it came from is still served.
    const projects = collect(socket, "project:updated");
    server.engine.toCompany("acme").emit("project:updated", { id: "p1" });
    await waitFor(() => projects.length === 1);
    // Its disconnect runs after the failed connect (the device's queue goes on), and fails alone; no rejection is left unhandled.
    socket.close();
    await waitFor(() => logged("presence disconnect could not be announced").length === 1, { message: "the disconnect's failure logged" });
  } finally {
    expect(await withTimeout(server.close().then(() => "closed"), 5000)).toBe("closed");
  }
});

test("a logger that throws never ends the process: what it was asked to log is dropped, Node.js is warned once, and the engine serves and closes", async () => {
  const presence = memoryPresenceStore();
  const outage = () => Promise.reject(new Error("ECONNRESET"));
  let calls = 0;
  const warnings: string[] = [];
  const onWarning = (warning: Error) => void (warning.name === "TrussLoggerWarning" && warnings.push(warning.message));
  process.on("warning", onWarning);
  const server = await startTestServer({
    // An application's logger with a bug: every call throws (a closed destination, a serializer that chokes).
    logger: {
      warn: () => {
        calls++;
        throw new Error("the log file is closed");
      },
      error: () => {
        calls++;
        throw new Error("the log file is closed");
      },
    },
    // The presence store is down, so every connect, heartbeat and disconnect is logged from a timer or a device's queue.
    presence: { ...presence, connect: outage, disconnect: outage, heartbeat: outage },
    presenceTiming: { ttlMs: 3000, heartbeatIntervalMs: 100, sweepIntervalMs: 100 },
  });
  server.engine.handle("expense:submit", () => {
    throw new Error("the ledger is locked");
  });
  try {
    const socket = await connectAs(server.url, alice);
    await waitFor(() => calls >= 1, { message: "the outage logged" });
    // A handler's failure is logged in the answer's path: the client still gets its code.
    const answer = await request(socket, "expense:submit", { amount: 1 });
    expect(answer).toMatchObject({ ok: false, error: { code: "HANDLER_ERROR" } });
    const projects = collect(socket, "project:updated");
    server.engine.toCompany("acme").emit("project:updated", { id: "p1" });
    await waitFor(() => projects.length === 1);
    socket.close();
    await sleep(300);
    await waitFor(() => warnings.length === 1, { message: "Node.js warned of the logger" });
    expect(warnings[0]).toContain("the log file is closed");
  } finally {
    process.off("warning", onWarning);
    expect(await withTimeout(server.close().then(() => "closed"), 5000)).toBe("closed");
  }
  expect(warnings).toHaveLength(1);
});
