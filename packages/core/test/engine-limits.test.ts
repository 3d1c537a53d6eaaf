import * as v from "valibot";
import { z } from "zod";
import { afterEach, describe, expect, test } from "vitest";
import { collect, connectAs, request, sleep, startTestServer, waitFor, type TestServer } from "@truss/test-utils";
import { defineEvents, type ErrorPayload } from "@truss/protocol";
import { Manager } from "socket.io-client";

let server: TestServer<any>;
afterEach(() => server?.close());

const alice = { userId: "alice", companyId: "acme" };

describe("payload size", () => {
  test("an oversized event is refused with PAYLOAD_TOO_LARGE and the connection stays usable", async () => {
    server = await startTestServer({ limits: { maxPayloadBytes: 1024 } });
    const socket = await connectAs(server.url, alice);
    const big = await request(socket, "document:update", { type: "note", id: "n1", baseVersion: 0, changes: { text: "x".repeat(5000) } });
    expect(big.error.code).toBe("PAYLOAD_TOO_LARGE");
    const small = await request(socket, "document:update", { type: "note", id: "n1", baseVersion: 0, changes: { text: "ok" } });
    expect(small.status).toBe("applied");
    socket.close();
  });

  test("a frame far past the limit closes only that connection; the server keeps serving", async () => {
    server = await startTestServer({ limits: { maxPayloadBytes: 1024 } });
    const attacker = await connectAs(server.url, alice);
    const reasons = collect<string>(attacker, "disconnect");
    attacker.emit("document:update", { blob: "x".repeat(2 * 1024 * 1024) });
    await waitFor(() => reasons.length === 1);
    const other = await connectAs(server.url, { userId: "bob", companyId: "acme" });
    expect((await request(other, "presence:list", {})).ok).toBe(true);
    other.close();
  });
});

describe("binary packets", () => {
  test("a binary event is measured whole: attachments under the limit one by one but over it together are PAYLOAD_TOO_LARGE", async () => {
    server = await startTestServer({ limits: { maxPayloadBytes: 1024 } });
    let handled = 0;
    server.engine.handle("scan:add", () => ({ handled: ++handled }));
    const socket = await connectAs(server.url, alice);
    // Each attachment is a frame of its own, the last one the smallest: the size is the header's and all of theirs.
    const split = await request(socket, "scan:add", { front: Buffer.alloc(900), back: Buffer.alloc(900), tail: Buffer.alloc(1) });
    expect(split).toMatchObject({ ok: false, error: { code: "PAYLOAD_TOO_LARGE" } });
    expect(Number(/was (\d+) bytes/.exec(split.error.message)?.[1])).toBeGreaterThan(1801);
    expect(handled).toBe(0);
    // The next text event is measured on its own again.
    expect(await request(socket, "scan:add", { front: "small" })).toMatchObject({ ok: true, result: { handled: 1 } });
    socket.close();
  });

  test("a connection that never joins sends attachments past the transport's cap: the server closes it at once", async () => {
    server = await startTestServer({ limits: { maxPayloadBytes: 1024 } });
    // Engine.IO alone, no namespace and no token: what the server holds before any handshake is checked.
    const manager = new Manager(server.url, { transports: ["websocket"], reconnection: false, autoConnect: false });
    await new Promise<void>((resolve, reject) => manager.open((error) => (error ? reject(error) : resolve())));
    const engine = manager.engine;
    const closed = new Promise<string>((resolve) => engine.on("close", (reason) => resolve(reason)));
    // A binary event announcing ten attachments, each of them under the 1 MiB frame cap, together past it.
    engine.write(`510-["scan:add",${JSON.stringify(Object.fromEntries(Array.from({ length: 10 }, (_, num) => [`p${num}`, { _placeholder: true, num }])))}]`);
    for (let index = 0; index < 3; index++) engine.write(Buffer.alloc(600 * 1024, index));
    // Without the bound the server would hold them until Socket.IO's 45 s connect timeout.
    expect(await Promise.race([closed, sleep(5_000).then(() => "still open")])).not.toBe("still open");
    manager._close?.();
  });
});

describe("rate limit", () => {
  test("a flood past the budget is refused with RATE_LIMITED, others are unaffected and the budget refills", async () => {
    server = await startTestServer({ limits: { eventsPerSecond: 10 } });
    const flooder = await connectAs(server.url, alice);
    const bystander = await connectAs(server.url, { userId: "bob", companyId: "acme" });
    const results = await Promise.all(Array.from({ length: 30 }, () => request(flooder, "presence:list", {})));
    const limited = results.filter((r) => !r.ok);
    expect(limited.length).toBeGreaterThanOrEqual(15);
    expect(limited[0].error.code).toBe("RATE_LIMITED");
    expect((await request(bystander, "presence:list", {})).ok).toBe(true);
    await sleep(1100);
    expect((await request(flooder, "presence:list", {})).ok).toBe(true);
    expect(await server.engine.metrics()).toMatch(/truss_errors_total\{code="RATE_LIMITED"\} \d+/);
    flooder.close();
    bystander.close();
  });

  test("events without an ack get at most one RATE_LIMITED error event a second", async () => {
    server = await startTestServer({ limits: { eventsPerSecond: 5 } });
    const flooder = await connectAs(server.url, alice);
    const errors = collect<ErrorPayload>(flooder, "error");
    for (let i = 0; i < 100; i++) flooder.emit("user:typing", {});
    await sleep(300);
    const rateErrors = errors.filter((e) => e.code === "RATE_LIMITED");
    expect(rateErrors).toHaveLength(1);
    flooder.close();
  });
});

describe("application events", () => {
  const events = defineEvents({
    server: { "user:typing": z.object({ userId: z.string(), documentId: z.string() }) },
    client: {
      "user:typing": z.object({ documentId: z.string().min(1) }),
      "expense:submit": v.object({ amount: v.pipe(v.number(), v.minValue(0)), currency: v.picklist(["EUR", "USD"]) }),
    },
  });

  test("payloads are validated by their zod or valibot schema before the handler runs", async () => {
    server = await startTestServer({ events });
    const seen: unknown[] = [];
    server.engine.handle("expense:submit", (data: unknown) => {
      seen.push(data);
      return { accepted: true };
    });
    server.engine.handle("user:typing", (data: { documentId: string }, { principal, broadcast }: any) => {
      broadcast("user:typing", { userId: principal.userId, documentId: data.documentId });
    });
    const socket = await connectAs(server.url, alice);
    const peer = await connectAs(server.url, { userId: "bob", companyId: "acme" });
    const typing = collect(peer, "user:typing");
    const selfTyping = collect(socket, "user:typing");

    const bad = await request(socket, "expense:submit", { amount: -5, currency: "GBP" });
    expect(bad.error.code).toBe("INVALID_PAYLOAD");
    expect(bad.error.message).toMatch(/amount/);
    expect(seen).toEqual([]);
    const good = await request(socket, "expense:submit", { amount: 12.5, currency: "EUR" });
    expect(good).toEqual({ ok: true, result: { accepted: true } });
    expect(seen).toEqual([{ amount: 12.5, currency: "EUR" }]);

    expect((await request(socket, "user:typing", { documentId: "" })).error.code).toBe("INVALID_PAYLOAD");
    expect((await request(socket, "user:typing", { documentId: "d1" })).ok).toBe(true);
    await waitFor(() => typing.length === 1);
    expect(typing[0]).toEqual({ userId: "alice", documentId: "d1" });
    expect(selfTyping).toEqual([]);

    expect((await request(socket, "invoice:forge", {})).error.code).toBe("UNKNOWN_EVENT");
    socket.close();
    peer.close();
  });

  test("a handler that throws answers HANDLER_ERROR without leaking its message, and the server stays up", async () => {
    server = await startTestServer({ events });
    server.engine.handle("expense:submit", () => {
      throw new Error("database password is hunter2");
    });
    const socket = await connectAs(server.url, alice);
    const result = await request(socket, "expense:submit", { amount: 1, currency: "EUR" });
    expect(result.error.code).toBe("HANDLER_ERROR");
    expect(result.error.message).not.toContain("hunter2");
    expect((await request(socket, "presence:list", {})).ok).toBe(true);
    socket.close();
  });

  test("handlers for events outside the catalog, and protocol event names, are refused at registration", async () => {
    server = await startTestServer({ events });
    expect(() => server.engine.handle("not:listed" as never, () => undefined)).toThrow(/catalog/);
    expect(() => defineEvents({ client: { "inbox:ack": z.object({}) } })).toThrow(/protocol event/);
    expect(() => server.engine.toCompany("acme").emit("presence:update" as never, {} as never)).toThrow(/protocol event/);
  });

  test.each([
    ["a lone surrogate", "alert:\ud800"],
    ["201 characters", `alert:${"x".repeat(195)}`],
  ])("an event name with %s is refused on every path, and nothing is stored or sent", async (_name, event) => {
    server = await startTestServer({ topics: { patterns: ["project:{projectId}"] }, authorize: () => true });
    const socket = await connectAs(server.url, alice);
    const heard: unknown[] = [];
    socket.onAny((name) => heard.push(name));
    await expect(server.engine.toUser("acme", "alice").emit(event as never, {} as never)).rejects.toThrow(/well-formed Unicode of at most 200/);
    expect(() => server.engine.toCompany("acme").emit(event as never, {} as never)).toThrow(/well-formed Unicode of at most 200/);
    expect(() => server.engine.toCompany("acme").volatile.emit(event as never, {} as never)).toThrow(/well-formed Unicode of at most 200/);
    expect(() => server.engine.toTopic("acme", "project:p1").emit(event as never, {} as never)).toThrow(/well-formed Unicode of at most 200/);
    expect(() => server.engine.handle(event as never, () => undefined)).toThrow(/well-formed Unicode of at most 200/);
    // A reconnecting device replays nothing: the inbox holds no message.
    socket.close();
    const again = await connectAs(server.url, alice);
    const replayed = collect(again, "inbox:message");
    await request(again, "presence:list", {});
    await sleep(50);
    expect(replayed).toEqual([]);
    expect(heard).toEqual([]);
    again.close();
  });
});

describe("health, metrics and shutdown", () => {
  test("health reports each store and the connection count; metrics are Prometheus text", async () => {
    server = await startTestServer();
    const socket = await connectAs(server.url, alice);
    const health = await server.engine.health();
    expect(health).toMatchObject({ status: "ok", connections: 1, stores: { presence: { state: "up" }, inbox: { state: "up" }, documents: { state: "up" } } });
    const metrics = await server.engine.metrics();
    expect(metrics).toContain("# TYPE truss_connections gauge");
    expect(metrics).toContain("truss_connections 1");
    socket.close();
  });

  test("a store whose ping fails makes health degraded", async () => {
    const { memoryDocumentStore } = await import("@truss/core");
    const documents = Object.assign(memoryDocumentStore(), { ping: () => Promise.reject(new Error("connection refused")) });
    server = await startTestServer({ documents });
    const health = await server.engine.health();
    expect(health.status).toBe("degraded");
    expect(health.stores.documents).toEqual({ state: "down", error: "connection refused" });
  });

  test("a store's own error text stays on the server: the client is told STORE_UNAVAILABLE, the app has it as the cause", async () => {
    const { memoryDocumentStore } = await import("@truss/core");
    const failure = new Error('password authentication failed for user "erp_prod_admin" at db.internal:5432');
    const documents = Object.assign(memoryDocumentStore(), { get: () => Promise.reject(failure) });
    server = await startTestServer({ documents });
    const socket = await connectAs(server.url, alice);
    const answer = await request(socket, "document:get", { type: "note", id: "n1" });
    expect(answer).toMatchObject({ ok: false, error: { code: "STORE_UNAVAILABLE" } });
    expect(JSON.stringify(answer)).not.toMatch(/erp_prod_admin|db\.internal|password/);
    const rejected = await server.engine.documents.get("acme", "note", "n1").catch((error: unknown) => error);
    expect(rejected).toMatchObject({ code: "STORE_UNAVAILABLE", cause: failure });
    socket.close();
  });

  test("close tells clients why, disconnects them, takes presence offline and refuses new handshakes", async () => {
    server = await startTestServer();
    const socket = await connectAs(server.url, alice);
    const errors = collect<ErrorPayload>(socket, "error");
    const reasons = collect<string>(socket, "disconnect");
    await server.engine.close();
    await waitFor(() => reasons.length === 1);
    expect(errors.map((e) => e.code)).toEqual(["SERVER_SHUTTING_DOWN"]);
    expect(reasons).toEqual(["io server disconnect"]);
    expect(await server.engine.isOnline("acme", "alice")).toBe(false);
    expect((await server.engine.health()).status).toBe("closing");
    await server.engine.close();
  });
});
