import { request as httpRequest } from "node:http";
import { afterEach, describe, expect, test } from "vitest";
import {
  collect,
  connectAs,
  connectError,
  createClient,
  open,
  request,
  signToken,
  sleep,
  startTcpProxy,
  startTestServer,
  waitFor,
  type TcpProxy,
  type TestServer,
} from "@truss/test-utils";
import { memoryDocumentStore } from "@truss/core";
import { errorAction, isRetryable, type ErrorCode, type ErrorPayload, type InboxMessage } from "@truss/protocol";

let server: TestServer<any> | undefined;
let proxy: TcpProxy | undefined;
const sockets: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await proxy?.close();
  proxy = undefined;
  await server?.close();
  server = undefined;
});

const alice = { userId: "alice", companyId: "acme" };
const bob = { userId: "bob", companyId: "acme" };

async function connect(claims: Parameters<typeof connectAs>[1], options: Parameters<typeof connectAs>[2] = {}) {
  const socket = await connectAs((proxy ?? server!).url, claims, options);
  sockets.push(socket);
  return socket;
}

function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

describe("whatever a handler returns ends as a coded answer", () => {
  test("a BigInt, a cycle and an answer too large to encode are refused with a code clients do not retry; the server keeps serving", async () => {
    server = await startTestServer();
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    server.engine
      .handle("bigint", () => 10n)
      .handle("circular", () => circular)
      .handle("huge", () => ({ toJSON: () => { throw new RangeError("Invalid string length"); } }))
      .handle("fine", () => "ok");
    const socket = await connect(alice);
    // The application's handler answers so every time: a code a client retries would run it again and again.
    const codes: ErrorCode[] = [];
    for (const event of ["bigint", "circular", "huge"]) codes.push((await request(socket, event, {})).error.code);
    expect(codes).toEqual(["HANDLER_ERROR", "HANDLER_ERROR", "PAYLOAD_TOO_LARGE"]);
    for (const code of codes) expect(isRetryable(errorAction(code)), code).toBe(false);
    expect(await request(socket, "fine", {})).toEqual({ ok: true, result: "ok" });
  });
});

describe("documents are bounded", () => {
  test("an update that would pass maxDocumentBytes is refused before the store, and the document is unchanged", async () => {
    server = await startTestServer();
    const socket = await connect(alice);
    const field = "x".repeat(60 * 1024);
    let version = 0;
    const codes: string[] = [];
    for (let i = 0; i < 6; i++) {
      const answer = await request(socket, "document:update", { type: "report", id: "r1", baseVersion: version, changes: { [`f${i}`]: field } });
      if (answer.ok) version = answer.document.version;
      else codes.push(answer.error.code);
    }
    // 4 fields of 60 KiB fit under 256 KiB; the 5th and 6th do not.
    expect(version).toBe(4);
    expect(codes).toEqual(["DOCUMENT_TOO_LARGE", "DOCUMENT_TOO_LARGE"]);
    const current = await request(socket, "document:get", { type: "report", id: "r1" });
    expect(Object.keys(current.document.data)).toEqual(["f0", "f1", "f2", "f3"]);
  });

  test("a history answer carries at most 1 MiB of versions, newest first", async () => {
    server = await startTestServer();
    const socket = await connect(alice);
    // Past the socket's 64 KiB event limit, so written through the server-side API.
    for (let version = 0; version < 12; version++) {
      await server.engine.documents.update("acme", "report", "r1", { baseVersion: version, changes: { text: String(version % 10).repeat(200 * 1024) } });
    }
    const history = await request(socket, "document:history", { type: "report", id: "r1", limit: 100 });
    expect(history.versions[0].version).toBe(12);
    expect(history.versions.length).toBeLessThan(12);
    expect(Buffer.byteLength(JSON.stringify(history.versions.map((v: { data: unknown }) => v.data)))).toBeLessThanOrEqual(1024 * 1024);
  });

  test("the memory store's history is bounded by bytes and always keeps the latest version", async () => {
    const store = memoryDocumentStore({ maxHistoryBytes: 1000 });
    const key = { companyId: "acme", type: "report", id: "r1" };
    for (let version = 0; version < 5; version++) await store.compareAndSet(key, version, { text: "y".repeat(400) }, null);
    expect((await store.history(key, 10)).map((v) => v.version)).toEqual([5, 4]);
    await store.compareAndSet(key, 5, { text: "z".repeat(5000) }, null);
    expect((await store.history(key, 10)).map((v) => v.version)).toEqual([6]);
  });
});

describe("nesting past limits.maxDepth is refused on every client event", () => {
  test("a 2,000-deep document update is INVALID_PAYLOAD, nothing is stored, and the document stays readable", async () => {
    server = await startTestServer();
    const socket = await connect(alice);
    expect((await request(socket, "document:update", { type: "note", id: "n1", baseVersion: 0, changes: { text: "ok" } })).ok).toBe(true);
    const poisoned = await request(socket, "document:update", { type: "note", id: "n1", baseVersion: 1, changes: { deep: nested(2000) } });
    expect(poisoned.error.code).toBe("INVALID_PAYLOAD");
    const read = await request(socket, "document:get", { type: "note", id: "n1" });
    expect(read.document).toMatchObject({ version: 1, data: { text: "ok" } });
    expect((await request(socket, "document:history", { type: "note", id: "n1" })).ok).toBe(true);
  });

  test("an application event's handler never sees a payload deeper than the limit", async () => {
    server = await startTestServer({ limits: { maxDepth: 8 } });
    let calls = 0;
    server.engine.handle("site:note", () => {
      calls += 1;
    });
    const socket = await connect(alice);
    expect((await request(socket, "site:note", nested(8))).ok).toBe(true);
    expect((await request(socket, "site:note", nested(9))).error.code).toBe("INVALID_PAYLOAD");
    expect(calls).toBe(1);
  });

  test("the server-side documents API refuses deep data too", async () => {
    server = await startTestServer();
    await expect(server.engine.documents.update("acme", "note", "n1", { baseVersion: 0, changes: { deep: nested(100) } })).rejects.toMatchObject({
      code: "INVALID_PAYLOAD",
    });
  });
});

describe("ids that no encoding can carry", () => {
  test("a document id with a lone surrogate is INVALID_PAYLOAD before any store call", async () => {
    server = await startTestServer();
    const socket = await connect(alice);
    for (const event of ["document:get", "document:history"]) {
      expect((await request(socket, event, { type: "note", id: "\udfff-x" })).error.code).toBe("INVALID_PAYLOAD");
    }
    const update = await request(socket, "document:update", { type: "\ud800", id: "n1", baseVersion: 0, changes: { text: "x" } });
    expect(update.error.code).toBe("INVALID_PAYLOAD");
  });

  test("the server API refuses an empty company or user id, and an empty event name, before anything is stored or sent", async () => {
    server = await startTestServer({ topics: { patterns: ["project:{projectId}"] }, authorize: () => true });
    const { engine } = server;
    expect(() => engine.toUser("acme", "")).toThrow(/userId must be a non-empty string.*got an empty string/);
    expect(() => engine.toUser("", "alice")).toThrow(TypeError);
    expect(() => engine.toCompany("")).toThrow(/companyId must be a non-empty string/);
    expect(() => engine.toTopic("", "project:p1")).toThrow(TypeError);
    await expect(engine.disconnectUser("acme", "")).rejects.toThrow(TypeError);
    await expect(engine.toUser("acme", "alice").emit("", { id: "e-1" })).rejects.toThrow(/event name must be a non-empty string/);
    expect(() => engine.toCompany("acme").emit("", {})).toThrow(TypeError);
    // Nothing reached the inbox: a device of alice's replays nothing.
    const socket = await connect(alice);
    const replayed = collect<InboxMessage>(socket, "inbox:message");
    await request(socket, "presence:list", {});
    expect(replayed).toEqual([]);
  });

  test("an id past 256 characters is refused by the server API and at the handshake, before anything is stored", async () => {
    const long = "u".repeat(257);
    server = await startTestServer({
      auth: { authenticate: async () => ({ userId: long, companyId: "acme", deviceId: "d1", roles: [], expiresAt: null }) },
    });
    const { engine } = server;
    expect(() => engine.toUser("acme", long)).toThrow(/at most 256 characters; got 257 characters/);
    expect(() => engine.toCompany(long)).toThrow(TypeError);
    expect(() => engine.toUser("acme", "u".repeat(256))).not.toThrow();
    const refusal = await connectError(server.url, { auth: { token: "anything" } });
    expect(refusal.data?.code).toBe("AUTH_MISSING_CLAIMS");
  });

  test("a principal whose ids are not well-formed Unicode is refused at the handshake", async () => {
    server = await startTestServer({
      auth: { authenticate: async () => ({ userId: "ben\udc00", companyId: "acme", deviceId: "d1", roles: [], expiresAt: null }) },
    });
    const refusal = await connectError(server.url, { auth: { token: "anything" } });
    expect(refusal.data?.code).toBe("AUTH_MISSING_CLAIMS");
  });
});

describe("a store's bug is not an outage", () => {
  test("a TypeError from a store answers INTERNAL_ERROR and is not counted as a store error; a driver error is STORE_UNAVAILABLE", async () => {
    const documents = memoryDocumentStore();
    let failWith: Error | null = null;
    server = await startTestServer({
      documents: {
        ...documents,
        get: (key) => (failWith ? Promise.reject(failWith) : documents.get(key)),
      },
    });
    const socket = await connect(alice);
    failWith = new TypeError("Cannot read properties of undefined");
    expect((await request(socket, "document:get", { type: "note", id: "n1" })).error.code).toBe("INTERNAL_ERROR");
    expect(await server.engine.metrics()).not.toMatch(/truss_store_errors_total\{store="documents"\}/);
    failWith = new Error("connect ECONNREFUSED 127.0.0.1:6379");
    expect((await request(socket, "document:get", { type: "note", id: "n1" })).error.code).toBe("STORE_UNAVAILABLE");
    expect(await server.engine.metrics()).toMatch(/truss_store_errors_total\{store="documents"\} 1/);
  });
});

describe("toUser stores only what it can deliver", () => {
  test("BigInt, circular, too deep and too large data are refused with nothing stored; the next message is delivered and replayed", async () => {
    server = await startTestServer({ limits: { maxMessageBytes: 1024 } });
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const send = (data: unknown) => server!.engine.toUser("acme", "alice").emit("expense:approved", data);
    await expect(send({ amount: 10n })).rejects.toMatchObject({ code: "INVALID_PAYLOAD" });
    await expect(send(circular)).rejects.toMatchObject({ code: "INVALID_PAYLOAD" });
    await expect(send(nested(100))).rejects.toMatchObject({ code: "INVALID_PAYLOAD" });
    await expect(send({ note: "x".repeat(2000) })).rejects.toMatchObject({ code: "PAYLOAD_TOO_LARGE" });
    const stored = await send({ id: "e-1" });

    const phone = createClient(server.url, { ...alice, deviceId: "phone" });
    sockets.push(phone);
    const replayed = collect<InboxMessage>(phone, "inbox:message");
    await open(phone);
    await waitFor(() => replayed.length === 1);
    expect(replayed[0]).toMatchObject({ id: stored.id, data: { id: "e-1" } });
  });
});

describe("users are scoped by company", () => {
  test("a token of another company with the same user and device id gets none of the user's messages, live or replayed", async () => {
    server = await startTestServer();
    await server.engine.toUser("acme", "7").emit("expense:approved", { id: "before" });
    const impostor = createClient(server.url, { userId: "7", companyId: "globex", deviceId: "d1" });
    sockets.push(impostor);
    const stolen = collect<InboxMessage>(impostor, "inbox:message");
    await open(impostor);
    const owner = createClient(server.url, { userId: "7", companyId: "acme", deviceId: "d1" });
    sockets.push(owner);
    const received = collect<InboxMessage>(owner, "inbox:message");
    await open(owner);
    await server.engine.toUser("acme", "7").emit("expense:approved", { id: "live" });
    await waitFor(() => received.length === 2);
    await sleep(100);
    expect(received.map((message) => (message.data as { id: string }).id)).toEqual(["before", "live"]);
    expect(stolen).toEqual([]);
  });
});

describe("slow consumers", () => {
  test("a client that stops reading is disconnected with SLOW_CONSUMER; a healthy one gets every broadcast", async () => {
    server = await startTestServer({ limits: { maxBufferedBytes: 256 * 1024 } });
    proxy = await startTcpProxy(server.port);
    const stalled = await connect({ userId: "stalled", companyId: "acme" });
    const healthy = await connectAs(server.url, bob);
    sockets.push(healthy);
    const received = collect<{ seq: number }>(healthy, "stock:updated");
    const serverSide = [...server.engine.io!.of("/").sockets.values()].find((socket) => socket.data.principal.userId === "stalled")!;
    const gone = new Promise((resolve) => serverSide.once("disconnect", resolve));
    proxy.stallDownstream();
    const payload = "s".repeat(16 * 1024);
    let sent = 0;
    // Far more than the kernel's loopback buffers hold, in bursts, until the guard acts.
    while (serverSide.connected && sent < 4000) {
      for (let i = 0; i < 50; i++) server.engine.toCompany("acme").emit("stock:updated", { seq: sent++, payload });
      await sleep(20);
    }
    await gone;
    expect(serverSide.connected).toBe(false);
    expect(await server.engine.metrics()).toMatch(/truss_slow_consumers_total 1/);
    await waitFor(() => received.length === sent, { timeoutMs: 10_000 });
    expect(received.map((message) => message.seq)).toEqual(Array.from({ length: sent }, (_, i) => i));
  });
});

describe("smaller holes", () => {
  test("auth:refresh with a token without exp is refused when the connection's token had one", async () => {
    server = await startTestServer();
    const socket = await connect(alice);
    const answer = await request(socket, "auth:refresh", { token: signToken(alice, { expiresInSec: null }) });
    expect(answer.error.code).toBe("AUTH_MISSING_CLAIMS");
    expect((await request(socket, "auth:refresh", { token: signToken(alice, { expiresInSec: 600 }) })).ok).toBe(true);
  });

  test("authExpiry.requireExpiry refuses tokens without exp at the handshake", async () => {
    server = await startTestServer({ authExpiry: { requireExpiry: true } });
    const refusal = await connectError(server.url, { auth: { token: signToken(alice, { expiresInSec: null }) } });
    expect(refusal.data?.code).toBe("AUTH_MISSING_CLAIMS");
  });

  test("polling requests of an existing session are checked against the Origin allow-list too", async () => {
    server = await startTestServer({ limits: { allowedOrigins: ["https://erp.example.com"] } });
    const get = (path: string, origin: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest({ host: "127.0.0.1", port: server!.port, path, headers: { origin } }, (res) => {
          let body = "";
          res.on("data", (chunk) => (body += chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("error", reject);
        req.end();
      });
    const handshake = await get("/socket.io/?EIO=4&transport=polling", "https://erp.example.com");
    expect(handshake.status).toBe(200);
    const sid = JSON.parse(handshake.body.slice(1)).sid as string;
    expect((await get(`/socket.io/?EIO=4&transport=polling&sid=${sid}`, "https://evil.example.net")).status).toBe(400);
    expect(await server.engine.metrics()).toMatch(/truss_auth_failures_total\{code="ORIGIN_NOT_ALLOWED"\} 1/);
  });

  test("limits.maxDevicesPerUser refuses a further device with TOO_MANY_DEVICES, also in a burst", async () => {
    server = await startTestServer({ limits: { maxDevicesPerUser: 3 } });
    const attempts = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => connect(alice, { deviceId: `d${i}` })),
    );
    const admitted = attempts.filter((attempt) => attempt.status === "fulfilled" && (attempt.value as { connected: boolean }).connected);
    await sleep(200);
    const stillConnected = attempts.filter(
      (attempt) => attempt.status === "fulfilled" && (attempt.value as { connected: boolean }).connected,
    );
    expect(stillConnected.length).toBe(3);
    expect(admitted.length).toBeGreaterThanOrEqual(3);
    const refusal = await connectError(server.url, { auth: { token: signToken(alice), deviceId: "one-more" } });
    expect(refusal.data?.code).toBe("TOO_MANY_DEVICES");
    // Another socket of a device that is already online is not a new device.
    const connectedDevice = (await request((stillConnected[0] as PromiseFulfilledResult<any>).value, "presence:list", {})).users[0].devices[0].deviceId;
    expect((await connect(alice, { deviceId: connectedDevice })).connected).toBe(true);
  });

  test("close() answers calls still running with SERVER_SHUTTING_DOWN", async () => {
    server = await startTestServer();
    server.engine.handle("slow", () => new Promise(() => undefined));
    server.engine.handle("quick", () => sleep(200).then(() => "done"));
    const socket = await connect(alice);
    const slow = request(socket, "slow", {}, 10_000);
    const quick = request(socket, "quick", {}, 10_000);
    await sleep(50);
    const closing = server.close();
    server = undefined;
    expect(await quick).toEqual({ ok: true, result: "done" });
    const answer: { ok: false; error: ErrorPayload } = await slow;
    expect(answer.error.code).toBe("SERVER_SHUTTING_DOWN");
    await closing;
  });
});
