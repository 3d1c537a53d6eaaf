import { afterEach, expect, test } from "vitest";
import { createServer, type Server as HttpServer } from "node:http";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { Server } from "socket.io";
import { collect, connectAs, createClient, open, signToken, startTestServer, testAuth, waitFor, type TestServer } from "@truss/test-utils";
import { createRealtimeEngine, memoryInboxStore, type RealtimeEngine } from "@truss/core";
import type { InboxMessage } from "@truss/protocol";

// toUser writes each inbox:message as text put together from the JSON made at the
// call, not through socket.emit. These check that a device gets what an emit would
// have sent, and that the engine emits as usual wherever that text could differ.

const alice = { userId: "alice", companyId: "acme", deviceId: "laptop" };

let server: TestServer | undefined;
let closeOwn: (() => Promise<void>) | undefined;
afterEach(async () => {
  await server?.close();
  await closeOwn?.();
  server = undefined;
  closeOwn = undefined;
});

/** Raw Engine.IO text frames the client receives. */
function rawFrames(socket: ReturnType<typeof createClient>): string[] {
  const frames: string[] = [];
  socket.io.on("open", () => socket.io.engine.on("message", (data: unknown) => frames.push(String(data))));
  return frames;
}

test("a live message arrives with the same fields and values the store returned, escapes included", async () => {
  server = await startTestServer();
  const device = createClient(server.url, alice);
  const frames = rawFrames(device);
  const received = collect<InboxMessage>(device, "inbox:message");
  await open(device);
  const data = { text: 'quote " backslash \\ line\u2028sep \u00e9 \ud83d\ude00', nested: [1, null, { deep: true }], at: new Date(0), skipped: undefined };
  const sent = await server.engine.toUser("acme", "alice").emit('odd "event" name', data);
  await waitFor(() => received.length === 1);
  expect(received[0]).toEqual(sent);
  expect(received[0]!.data).toEqual({ text: data.text, nested: [1, null, { deep: true }], at: "1970-01-01T00:00:00.000Z" });
  // The frame is exactly what Socket.IO's encoder makes of the message.
  expect(frames.filter((frame) => frame.startsWith('2["inbox:message"'))).toEqual([`2${JSON.stringify(["inbox:message", sent])}`]);
  device.close();
});

test("a message without data arrives without a data field, as an emit would send it", async () => {
  server = await startTestServer();
  const device = await connectAs(server.url, alice);
  const received = collect<InboxMessage>(device, "inbox:message");
  const sent = await server.engine.toUser("acme", "alice").emit("ping", undefined);
  await waitFor(() => received.length === 1);
  expect(received[0]).toEqual(sent);
  expect("data" in received[0]!).toBe(false);
  device.close();
});

test("data changed by the app after the call reaches neither the live device nor the replay", async () => {
  server = await startTestServer();
  const live = await connectAs(server.url, alice);
  const received = collect<InboxMessage>(live, "inbox:message");
  const data = { amount: 1 };
  const pending = server.engine.toUser("acme", "alice").emit("expense:approved", data);
  data.amount = 2;
  await pending;
  await waitFor(() => received.length === 1);
  expect(received[0]!.data).toEqual({ amount: 1 });
  const phone = createClient(server.url, { ...alice, deviceId: "phone" });
  const replayed = collect<InboxMessage>(phone, "inbox:message");
  await open(phone);
  await waitFor(() => replayed.length === 1);
  expect(replayed[0]!.data).toEqual({ amount: 1 });
  live.close();
  phone.close();
});

test("a repeat on another node pushes the first message's data, not the repeat's", async () => {
  // Two engines share one inbox store, without an adapter: the first send's node has no socket of
  // alice's, so only the repeat, on the node she is connected to, pushes the (stored) message to her.
  const inbox = memoryInboxStore();
  server = await startTestServer({ inbox });
  const other = await startTestServer({ inbox });
  try {
    const device = await connectAs(server.url, alice);
    const received = collect<InboxMessage>(device, "inbox:message");
    const first = await other.engine.toUser("acme", "alice").emit("expense:approved", { n: 1 }, { idempotencyKey: "k" });
    const repeat = await server.engine.toUser("acme", "alice").emit("expense:approved", { n: 2 }, { idempotencyKey: "k" });
    expect(repeat).toEqual(first);
    await waitFor(() => received.length === 1);
    expect(received[0]).toEqual(first);
    device.close();
  } finally {
    await other.close();
  }
});

/** An engine bound to a Socket.IO server made here, with the server options a test needs. */
async function ownServer(options: ConstructorParameters<typeof Server>[1], engineOptions: { namespace?: string } = {}): Promise<{ engine: RealtimeEngine; io: Server; url: string }> {
  const http: HttpServer = createServer();
  const io = new Server(http, options);
  const engine = createRealtimeEngine({ auth: testAuth(), logger: false, ...engineOptions });
  engine.bind(io);
  http.listen(0, "127.0.0.1");
  await once(http, "listening");
  closeOwn = async () => {
    await engine.close();
    io.close();
    http.closeAllConnections();
  };
  return { engine, io, url: `http://127.0.0.1:${(http.address() as AddressInfo).port}` };
}

test("outside the main namespace the packet names the namespace", async () => {
  const { engine, url } = await ownServer({}, { namespace: "/sync" });
  const device = createClient(`${url}/sync`, alice);
  const received = collect<InboxMessage>(device, "inbox:message");
  await open(device);
  const sent = await engine.toUser("acme", "alice").emit("expense:approved", { n: 1 });
  await waitFor(() => received.length === 1);
  expect(received[0]).toEqual(sent);
  device.close();
});

test("a parser with a replacer encodes the message itself, so its replacer still applies", async () => {
  // A parser whose encoder rewrites every "secret" field: the text made at the call knows nothing of it.
  // Socket.IO's own parser, with a replacer given to its encoder.
  type Parser = { Encoder: new (replacer?: (key: string, value: unknown) => unknown) => object; Decoder: unknown };
  const { Encoder, Decoder } = (new Server() as unknown as { _parser: Parser })._parser;
  const replacer = (key: string, value: unknown) => (key === "secret" ? "[redacted]" : value);
  const parser = { Encoder: class extends Encoder { constructor() { super(replacer); } }, Decoder };
  const { engine, url } = await ownServer({ parser });
  const device = createClient(url, alice);
  const received = collect<InboxMessage>(device, "inbox:message");
  await open(device);
  await engine.toUser("acme", "alice").emit("expense:approved", { secret: "s3cret", n: 1 });
  await waitFor(() => received.length === 1);
  expect(received[0]!.data).toEqual({ secret: "[redacted]", n: 1 });
  device.close();
});

test("an outgoing listener on the socket still hears every inbox message", async () => {
  const { engine, io, url } = await ownServer({});
  const heard: string[] = [];
  io.on("connection", (socket) => socket.onAnyOutgoing((event: string) => heard.push(event)));
  const device = await connectAs(url, alice);
  const received = collect<InboxMessage>(device, "inbox:message");
  await engine.toUser("acme", "alice").emit("expense:approved", { n: 1 });
  await waitFor(() => received.length === 1);
  expect(heard).toContain("inbox:message");
  device.close();
});

test("with connection state recovery on, an inbox message goes through the adapter and is kept for recovery", async () => {
  const { engine, io, url } = await ownServer({ connectionStateRecovery: {} });
  const device = await connectAs(url, alice, { token: signToken(alice) });
  const received = collect<InboxMessage>(device, "inbox:message");
  const kept: string[] = [];
  const adapter = io.of("/").adapter as unknown as { persistSession?: unknown; broadcast: (packet: { data: unknown[] }, opts: unknown) => void };
  const broadcast = adapter.broadcast.bind(adapter);
  adapter.broadcast = (packet, opts) => {
    kept.push(String(packet.data[0]));
    broadcast(packet, opts);
  };
  await engine.toUser("acme", "alice").emit("expense:approved", { n: 1 });
  await waitFor(() => received.length === 1);
  expect(kept).toContain("inbox:message");
  device.close();
});
