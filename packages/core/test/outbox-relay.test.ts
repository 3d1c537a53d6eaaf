import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import {
  createRealtimeEngine,
  memoryInboxStore,
  memoryStreamStore,
  outboxStream,
  relay,
  type InboxStore,
  type OutboxBatch,
  type OutboxOutcome,
  type OutboxRow,
  type OutboxSource,
  type StreamStore,
  TrussError,
} from "@truss/core";
import { connect } from "@truss/client";
import { connectAs, signToken, sleep, startTestServer, waitFor, type TestServer } from "@truss/test-utils";
import type { Socket as ClientSocket } from "socket.io-client";
import { afterEach, describe, expect, test } from "vitest";

let server: TestServer | undefined;
const sockets: ClientSocket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await server?.close();
  server = undefined;
});

/**
 * An outbox table in memory, as a database source behaves for one relay:
 * claims hand out pending rows oldest first, settle removes the done ones
 * and keeps the failed ones out of later claims.
 */
class MemorySource implements OutboxSource {
  readonly pending: OutboxRow[] = [];
  readonly failed: Array<{ id: string; code: string; message: string }> = [];
  claims = 0;
  /** Settles that fail (the database went away at the commit): the rows stay pending. */
  failSettles = 0;
  closed = false;
  private wake: (() => void) | undefined;
  private next = 1;

  add(row: Omit<OutboxRow, "id">): void {
    this.pending.push({ id: String(this.next++), ...row });
    this.wake?.();
  }

  async claim(limit: number, skip?: ReadonlySet<string>): Promise<OutboxBatch | null> {
    this.claims += 1;
    const rows = this.pending.filter((row) => !skip?.has(outboxStream(row.target))).slice(0, limit);
    if (rows.length === 0) return null;
    return {
      rows,
      settle: async (outcome: OutboxOutcome) => {
        if (this.failSettles > 0) {
          this.failSettles -= 1;
          throw new Error("Connection terminated unexpectedly");
        }
        const finished = new Set([...outcome.done, ...outcome.failed.map((failure) => failure.id)]);
        for (let i = this.pending.length - 1; i >= 0; i--) if (finished.has(this.pending[i]!.id)) this.pending.splice(i, 1);
        this.failed.push(...outcome.failed);
      },
    };
  }

  wait(timeoutMs: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.wake = done;
      signal.addEventListener("abort", done, { once: true });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** A stream store whose appends fail while `down`, as a Redis that is unreachable. */
function flakyStreams(): { store: StreamStore; down: boolean } {
  const inner = memoryStreamStore();
  const state: { store: StreamStore; down: boolean } = {
    down: false,
    store: {
      ...inner,
      append: (...args: Parameters<StreamStore["append"]>) => (state.down ? Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:6379")) : inner.append(...args)),
      read: inner.read.bind(inner),
      trimmed: inner.trimmed.bind(inner),
    } as StreamStore,
  };
  return state;
}

/** An inbox store whose appends fail while `down`. */
function flakyInbox(): { store: InboxStore; down: boolean } {
  const inner = memoryInboxStore();
  const state = { down: false, store: Object.create(inner) as InboxStore };
  state.store.append = (...args) => (state.down ? Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:6379")) : inner.append(...args));
  return state;
}

const alice = { companyId: "acme", userId: "alice", deviceId: "alice-phone" };
const bob = { companyId: "acme", userId: "bob", deviceId: "bob-phone" };

async function wire(claims: typeof alice, event: string): Promise<Array<{ data: unknown; offset?: number }>> {
  const socket = await connectAs(server!.url, claims);
  sockets.push(socket);
  const heard: Array<{ data: unknown; offset?: number }> = [];
  socket.on(event, (data: unknown, position?: { offset: number }) => heard.push(position ? { data, offset: position.offset } : { data }));
  socket.on("inbox:message", (message: { event: string; data: unknown }) => {
    if (message.event === event) heard.push({ data: message.data });
  });
  return heard;
}

describe("relay", () => {
  test("a transient failure holds back its stream, in order, retried with backoff; other streams go on", async () => {
    const streams = flakyStreams();
    server = await startTestServer({ streams: streams.store });
    const source = new MemorySource();
    const handle = relay(server.engine, source, { pollIntervalMs: 50, minBackoffMs: 20, maxBackoffMs: 40 });
    const company = await wire(alice, "project:updated");
    const inbox = await wire(bob, "expense:approved");

    streams.down = true;
    source.add({ target: { kind: "company", companyId: "acme" }, event: "project:updated", data: { n: 1 } });
    source.add({ target: { kind: "company", companyId: "acme" }, event: "project:updated", data: { n: 2 } });
    source.add({ target: { kind: "user", companyId: "acme", userId: "bob" }, event: "expense:approved", data: { n: 3 } });
    // The inbox row behind the stuck company stream is published.
    await waitFor(() => inbox.length === 1, { message: "the other stream" });
    await waitFor(() => handle.stats.retried >= 3, { message: "a few retries" });
    expect(source.pending.map((row) => row.id)).toEqual(["1", "2"]);
    expect(await server.engine.metrics()).toMatch(/^truss_outbox_retries_total\{code="STORE_UNAVAILABLE"\} [3-9]\d*$/m);

    streams.down = false;
    const stored = () => company.filter((entry) => entry.offset !== undefined);
    await waitFor(() => source.pending.length === 0 && stored().length >= 2, { message: "the stream to drain" });
    await sleep(100);
    // Stored once each, in order; nothing went out live while the store could not take it.
    expect(company).toEqual([
      { data: { n: 1 }, offset: 1 },
      { data: { n: 2 }, offset: 2 },
    ]);
    expect(handle.stats).toMatchObject({ published: 3, failed: 0 });
  });

  test("a store failure on a user's inbox is retried until it is stored, once", async () => {
    const inboxStore = flakyInbox();
    server = await startTestServer({ inbox: inboxStore.store });
    const source = new MemorySource();
    const handle = relay(server.engine, source, { pollIntervalMs: 50, minBackoffMs: 20, maxBackoffMs: 40 });
    const heard = await wire(alice, "expense:approved");
    inboxStore.down = true;
    source.add({ target: { kind: "user", companyId: "acme", userId: "alice" }, event: "expense:approved", data: { n: 1 } });
    await waitFor(() => handle.stats.retried >= 2, { message: "retries" });
    expect(heard).toEqual([]);
    inboxStore.down = false;
    await waitFor(() => heard.length === 1, { message: "the message" });
    await sleep(200);
    expect(heard).toEqual([{ data: { n: 1 } }]);
    expect(await server.engine.metrics()).toMatch(/^truss_outbox_retries_total\{code="STORE_UNAVAILABLE"\} [2-9]\d*$/m);
  });

  test("rows the engine refuses for good are failed with their code, logged once each, and never block the row behind", async () => {
    const errors: unknown[][] = [];
    server = await startTestServer({ logger: { warn: () => undefined, error: (...args: unknown[]) => void errors.push(args) } });
    const source = new MemorySource();
    const handle = relay(server.engine, source, { pollIntervalMs: 50 });
    const heard = await wire(alice, "expense:approved");
    const toAlice = { kind: "user", companyId: "acme", userId: "alice" } as const;
    source.add({ target: toAlice, event: "expense:approved", data: { note: "x".repeat(70_000) } });
    source.add({ target: { kind: "topic", companyId: "acme", topic: "not a topic" }, event: "expense:approved", data: {} });
    source.add({ target: toAlice, event: "inbox:message", data: {} });
    source.add({ target: { kind: "elsewhere" } as never, event: "expense:approved", data: {} });
    source.add({ target: toAlice, event: "expense:approved", data: { n: 5 } });
    await waitFor(() => heard.length === 1 && source.pending.length === 0, { message: "the good row" });
    expect(heard).toEqual([{ data: { n: 5 } }]);
    // Streams are published side by side, so failures settle in any order across streams.
    expect(source.failed.map((failure) => [failure.id, failure.code]).sort()).toEqual([
      ["1", "PAYLOAD_TOO_LARGE"],
      ["2", "INVALID_PAYLOAD"],
      ["3", "INVALID_PAYLOAD"],
      ["4", "INVALID_PAYLOAD"],
    ]);
    expect(errors).toHaveLength(4);
    expect(handle.stats).toMatchObject({ published: 1, failed: 4, retried: 0 });
    const metrics = await server.engine.metrics();
    expect(metrics).toMatch(/^truss_outbox_failed_total\{code="INVALID_PAYLOAD"\} 3$/m);
    expect(metrics).toMatch(/^truss_outbox_batch_duration_seconds_count [1-9]/m);
  });

  test("a row a store refuses for good keeps the store's own words (the error's cause) in its failed message", async () => {
    const errors: unknown[][] = [];
    // As the PostgreSQL stores refuse a value: a message that names no database internals, the database's text as the cause.
    const database = Object.assign(new Error('index row size 3024 exceeds btree version 4 maximum 2704 for index "inbox_users_pkey"'), { code: "54000" });
    const inner = memoryInboxStore();
    const refusing = Object.create(inner) as InboxStore;
    refusing.append = () => Promise.reject(new TrussError("INVALID_PAYLOAD", "A value of this call cannot be stored; the same call is refused again.", { cause: database }));
    server = await startTestServer({ inbox: refusing, logger: { warn: () => undefined, error: (...args: unknown[]) => void errors.push(args) } });
    const source = new MemorySource();
    const handle = relay(server.engine, source, { pollIntervalMs: 50 });
    source.add({ target: { kind: "user", companyId: "acme", userId: "alice" }, event: "expense:approved", data: { n: 1 } });
    await waitFor(() => source.failed.length === 1, { message: "the row marked failed" });
    expect(source.failed[0]).toMatchObject({ code: "INVALID_PAYLOAD", message: expect.stringContaining("cannot be stored") });
    expect(source.failed[0]!.message).toContain('for index "inbox_users_pkey"');
    expect(errors).toEqual([[expect.any(String), expect.objectContaining({ message: source.failed[0]!.message })]]);
    expect(handle.stats).toMatchObject({ failed: 1, retried: 0 });
  });

  test("a full inbox quota holds the user's rows, in order, until messages expire and make room; none is failed", async () => {
    // About 14 of these fit the quota at once; each goes after a second.
    const inbox = memoryInboxStore({ maxBytesPerCompany: 20_000, ttlMs: 1_000 });
    server = await startTestServer({ inbox });
    const source = new MemorySource();
    const handle = relay(server.engine, source, { pollIntervalMs: 50, minBackoffMs: 20, maxBackoffMs: 100 });
    const heard = await wire(alice, "expense:rejected");
    for (let n = 0; n < 40; n++) source.add({ target: { kind: "user", companyId: "acme", userId: "alice" }, event: "expense:rejected", data: { n, note: "x".repeat(800) } });
    await waitFor(() => source.pending.length === 0 || source.failed.length > 0, { timeoutMs: 10_000, message: "the rows to go" });
    expect(source.failed).toEqual([]);
    await waitFor(() => heard.length === 40, { message: "every message" });
    expect(heard.map((entry) => (entry.data as { n: number }).n)).toEqual([...Array(40).keys()]);
    expect(handle.stats).toMatchObject({ published: 40, failed: 0 });
    expect(await server.engine.metrics()).toMatch(/^truss_outbox_retries_total\{code="QUOTA_EXCEEDED"\} [1-9]\d*$/m);
  });

  test("one company's full inbox quota holds its own rows alone: another company's rows go at once, however long the first stays full", async () => {
    // acme's quota stays full (the messages live for a minute); globex has room.
    const inbox = memoryInboxStore({ maxBytesPerCompany: 20_000, ttlMs: 60_000 });
    server = await startTestServer({ inbox });
    const source = new MemorySource();
    const handle = relay(server.engine, source, { pollIntervalMs: 50, minBackoffMs: 100, maxBackoffMs: 5_000 });
    const carol = { companyId: "globex", userId: "carol", deviceId: "carol-phone" };
    const heard = await wire(carol, "expense:rejected");
    for (let n = 0; n < 30; n++) source.add({ target: { kind: "user", companyId: "acme", userId: "alice" }, event: "expense:rejected", data: { n, note: "x".repeat(800) } });
    // Long enough for a backoff shared by every stream to reach its 5 s ceiling.
    await waitFor(() => handle.stats.retried >= 6, { timeoutMs: 10_000, message: "acme's rows to be refused a few times" });
    for (let n = 0; n < 5; n++) {
      const sentAt = Date.now();
      source.add({ target: { kind: "user", companyId: "globex", userId: "carol" }, event: "expense:rejected", data: { n } });
      await waitFor(() => heard.length === n + 1, { timeoutMs: 1_000, message: `globex's row ${n} within a second, while acme is held` });
      expect(Date.now() - sentAt).toBeLessThan(1_000);
    }
    expect(source.failed).toEqual([]);
    expect(source.pending.some((row) => row.target.kind === "user" && row.target.companyId === "acme")).toBe(true);
  });

  test("more streams held by a full quota than a batch takes leave the other companies' rows moving: a claim leaves the held streams out", async () => {
    // acme's quota stays full; each of its 12 users is a stream of its own, more than the batch of 5 takes.
    const inbox = memoryInboxStore({ maxBytesPerCompany: 20_000, ttlMs: 60_000 });
    server = await startTestServer({ inbox });
    const source = new MemorySource();
    const handle = relay(server.engine, source, { batchSize: 5, pollIntervalMs: 50, minBackoffMs: 500, maxBackoffMs: 5_000 });
    const carol = { companyId: "globex", userId: "carol", deviceId: "carol-phone" };
    const heard = await wire(carol, "expense:rejected");
    for (let n = 0; n < 40; n++) source.add({ target: { kind: "user", companyId: "acme", userId: "alice" }, event: "expense:rejected", data: { n, note: "x".repeat(800) } });
    for (let user = 0; user < 12; user++) source.add({ target: { kind: "user", companyId: "acme", userId: `user-${user}` }, event: "expense:rejected", data: { user } });
    await waitFor(() => handle.stats.retried >= 12, { timeoutMs: 10_000, message: "acme's streams to be held" });
    const sentAt = Date.now();
    source.add({ target: { kind: "user", companyId: "globex", userId: "carol" }, event: "expense:rejected", data: { n: 1 } });
    await waitFor(() => heard.length === 1, { timeoutMs: 1_000, message: "globex's row within a second, while a dozen of acme's streams are held" });
    expect(Date.now() - sentAt).toBeLessThan(1_000);
    expect(source.failed).toEqual([]);
  });

  test("a batch whose settle failed is published again, and devices still get each row once", async () => {
    server = await startTestServer();
    const source = new MemorySource();
    source.failSettles = 2;
    relay(server.engine, source, { pollIntervalMs: 50, minBackoffMs: 10, maxBackoffMs: 20 });
    const company = await wire(alice, "project:updated");
    const phone = connect(server.url, { token: signToken(bob), deviceId: bob.deviceId, socketOptions: { transports: ["websocket"] } });
    const handed: unknown[] = [];
    phone.on("project:updated", (data) => void handed.push(data));
    phone.on("expense:approved", (data) => void handed.push(data));
    try {
      await waitFor(() => phone.status === "connected", { message: "the device" });
      source.add({ target: { kind: "company", companyId: "acme" }, event: "project:updated", data: { n: 1 } });
      source.add({ target: { kind: "user", companyId: "acme", userId: "bob" }, event: "expense:approved", data: { n: 2 } });
      await waitFor(() => source.pending.length === 0, { message: "the rows to settle" });
      await sleep(200);
      // On the wire the repeats come again with the first position (one stream entry)...
      expect(company.length).toBe(3);
      expect(new Set(company.map((entry) => entry.offset))).toEqual(new Set([1]));
      // ...and the device hands each row to its app once.
      expect(handed).toEqual([{ n: 1 }, { n: 2 }]);
    } finally {
      phone.close();
    }
  });

  test("a relay made before the engine is attached starts with it, and engine.close() stops it and its source", async () => {
    const engine = createRealtimeEngine({ auth: (await import("@truss/test-utils")).testAuth(), logger: false });
    const source = new MemorySource();
    const handle = relay(engine, source, { pollIntervalMs: 20 });
    await sleep(100);
    expect(source.claims).toBe(0);
    const http = createServer();
    engine.attach(http);
    http.listen(0, "127.0.0.1");
    await once(http, "listening");
    try {
      await waitFor(() => source.claims > 0, { message: "the first claim" });
      source.add({ target: { kind: "user", companyId: "acme", userId: "alice" }, event: "expense:approved", data: {} });
      await waitFor(() => handle.stats.published === 1, { message: "the row" });
    } finally {
      await engine.close();
      http.close();
    }
    expect(source.closed).toBe(true);
    const claims = source.claims;
    await sleep(100);
    expect(source.claims).toBe(claims);
    void (http.address() as AddressInfo | null);
  });

  test("a user row's undelivered choice reaches the engine's toUser; a broadcast row that carries one is failed", async () => {
    const calls: Array<{ event: string; at: number }> = [];
    server = await startTestServer({
      logger: { warn: () => undefined, error: () => undefined },
      undelivered: { afterMs: 10_000, pollIntervalMs: 20, handler: ({ message }) => void calls.push({ event: message.event, at: Date.now() }) },
    });
    const source = new MemorySource();
    const handle = relay(server.engine, source, { pollIntervalMs: 20 });
    const toAlice = { kind: "user", companyId: "acme", userId: "alice" } as const;
    const written = Date.now();
    source.add({ target: toAlice, event: "expense:approved", data: {}, undelivered: false });
    source.add({ target: toAlice, event: "expense:rejected", data: {}, undelivered: { afterMs: 200 } });
    source.add({ target: { kind: "company", companyId: "acme" }, event: "project:updated", data: {}, undelivered: false });
    await waitFor(() => calls.length === 1, { message: "the call of the 200 ms row", timeoutMs: 3000 });
    expect(calls[0]!.event).toBe("expense:rejected");
    expect(calls[0]!.at - written).toBeGreaterThanOrEqual(200);
    await sleep(300);
    expect(calls).toHaveLength(1);
    expect(source.failed).toEqual([expect.objectContaining({ id: "3", code: "INVALID_PAYLOAD", message: expect.stringContaining("undelivered is for toUser messages only") })]);
    expect(handle.stats).toMatchObject({ published: 2, failed: 1 });
  });

  test("relay() on an engine that is closing or closed is refused at the call, and closes the source it was given", async () => {
    server = await startTestServer();
    const { engine } = server;
    const closing = engine.close();
    const early = new MemorySource();
    expect(() => relay(engine, early, { pollIntervalMs: 20 })).toThrow(/engine\.close\(\) was called/);
    await closing;
    const late = new MemorySource();
    late.add({ target: { kind: "user", companyId: "acme", userId: "alice" }, event: "expense:approved", data: {} });
    expect(() => relay(engine, late, { pollIntervalMs: 20 })).toThrow(/engine\.close\(\) was called/);
    await sleep(100);
    expect([early.claims, late.claims]).toEqual([0, 0]);
    expect([early.closed, late.closed]).toEqual([true, true]);
    expect(late.pending).toHaveLength(1);
  });

  test("options that are not positive integers are refused", () => {
    const engine = createRealtimeEngine({ auth: { authenticate: async () => ({ companyId: "a", userId: "b" }) } as never, logger: false });
    expect(() => relay(engine, new MemorySource(), { batchSize: 0 })).toThrow(TypeError);
    expect(() => relay(engine, new MemorySource(), { pollIntervalMs: 1.5 })).toThrow(TypeError);
    expect(() => relay(engine, new MemorySource(), { minBackoffMs: 100, maxBackoffMs: 10 })).toThrow(TypeError);
  });
});
