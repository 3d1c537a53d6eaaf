import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { AsyncLocalStorage } from "node:async_hooks";
import { context, ROOT_CONTEXT, SpanStatusCode, trace, type Context, type ContextManager } from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { connectAs, createClient, open, request, startTestServer, type TestServer } from "@truss/test-utils";

let server: TestServer | undefined;
const exporter = new InMemorySpanExporter();

/** What `@opentelemetry/context-async-hooks` provides, in a few lines: the active context follows async calls. */
class AsyncContextManager implements ContextManager {
  private readonly storage = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.storage.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return this.storage.run(ctx, () => fn.apply(thisArg, args));
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    return this;
  }
}

afterEach(async () => {
  await server?.close();
  server = undefined;
  trace.disable();
  context.disable();
  exporter.reset();
});

const alice = { userId: "alice", companyId: "acme", deviceId: "laptop" };
const spans = (name: string) => exporter.getFinishedSpans().filter((span) => span.name === name);

describe("with a registered tracer provider", () => {
  beforeEach(() => {
    context.setGlobalContextManager(new AsyncContextManager());
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  });

  test("the handshake is a span, accepted or refused with its code", async () => {
    server = await startTestServer();
    const socket = await connectAs(server.url, alice);
    await expect(open(createClient(server.url, alice, { token: "not-a-token" }))).rejects.toThrow();
    const [accepted, refused] = spans("truss.handshake");
    expect(accepted?.attributes).toMatchObject({ "truss.outcome": "accepted", "truss.company_id": "acme", "truss.namespace": "/" });
    expect(accepted?.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(refused?.attributes).toMatchObject({ "truss.outcome": "refused", "truss.error.code": "AUTH_INVALID_TOKEN" });
    expect(refused?.status.code).toBe(SpanStatusCode.ERROR);
    expect(accepted?.instrumentationScope.name).toBe("@truss/core");
    socket.close();
  });

  test("document:update is a span with the document type and outcome; a coded refusal marks it failed", async () => {
    server = await startTestServer();
    const socket = await connectAs(server.url, alice);
    expect((await request(socket, "document:update", { type: "project", id: "p1", baseVersion: 0, changes: { name: "Tower" } })).ok).toBe(true);
    expect((await request(socket, "document:update", { type: "project", id: "p1", baseVersion: 0 })).ok).toBe(false);
    const [applied, invalid] = spans("truss.document.update");
    expect(applied?.attributes).toMatchObject({ "truss.document.type": "project", "truss.outcome": "applied", "truss.company_id": "acme", "truss.event": "document:update" });
    expect(invalid?.attributes).toMatchObject({ "truss.document.type": "project", "truss.error.code": "INVALID_PAYLOAD" });
    expect(invalid?.status.code).toBe(SpanStatusCode.ERROR);
    socket.close();
  });

  test("toUser is a span, a child of the caller's active span, with the event and whether it was a duplicate", async () => {
    server = await startTestServer();
    const engine = server.engine;
    const tracer = trace.getTracer("app");
    await tracer.startActiveSpan("POST /expenses/approve", async (parent) => {
      await engine.toUser("acme", "alice").emit("expense:approved", { id: "e1" }, { idempotencyKey: "k1" });
      await engine.toUser("acme", "alice").emit("expense:approved", { id: "e1" }, { idempotencyKey: "k1" });
      parent.end();
    });
    await expect(engine.toUser("acme", "alice").emit("inbox:message" as never, {})).rejects.toThrow(TypeError);
    const [first, repeat, refused] = spans("truss.to_user");
    const parent = spans("POST /expenses/approve")[0]!;
    expect(first?.attributes).toMatchObject({ "truss.event": "expense:approved", "truss.inbox.duplicate": false });
    expect(repeat?.attributes).toMatchObject({ "truss.inbox.duplicate": true });
    expect(first?.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(first?.spanContext().traceId).toBe(parent.spanContext().traceId);
    expect(refused?.status.code).toBe(SpanStatusCode.ERROR);
    expect(refused?.attributes["truss.error.code"]).toBe("INVALID_ARGUMENT");
  });
});

test("without a tracer provider the engine works and nothing is exported", async () => {
  server = await startTestServer();
  const socket = await connectAs(server.url, alice);
  expect((await request(socket, "document:update", { type: "project", id: "p1", baseVersion: 0, changes: { name: "Tower" } })).ok).toBe(true);
  await server.engine.toUser("acme", "alice").emit("notification:new", { n: 1 });
  expect(exporter.getFinishedSpans()).toEqual([]);
  socket.close();
});
