import { memoryStreamStore, type StreamStore } from "@truss/core";
import { STREAM_RECORD_OVERHEAD_BYTES } from "../src/streams/memory.js";
import type { StreamPosition } from "@truss/protocol";
import { connectAs, request, sleep, startTestServer, waitFor, type TestClaims, type TestServer } from "@truss/test-utils";
import type { Socket as ClientSocket } from "socket.io-client";
import { afterEach, describe, expect, test } from "vitest";

let server: TestServer;
const sockets: ClientSocket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await server?.close();
});

const alice = { userId: "alice", companyId: "acme" };
const connect = async (claims: TestClaims) => {
  const socket = await connectAs(server.url, claims);
  sockets.push(socket);
  return socket;
};

/** Every application event a socket hears, with its stream position (the third argument) if any. */
function positions(socket: ClientSocket, event: string): Array<{ data: unknown; position?: StreamPosition }> {
  const heard: Array<{ data: unknown; position?: StreamPosition }> = [];
  socket.on(event, (data: unknown, position?: StreamPosition) => heard.push(position ? { data, position } : { data }));
  return heard;
}

describe("company and topic streams", () => {
  test("every stored broadcast carries its stream, epoch and a contiguous offset; volatile ones carry none, a topic's only its stream", async () => {
    server = await startTestServer({ authorize: () => true });
    const socket = await connect(alice);
    await request(socket, "topic:subscribe", { topic: "project:p1" });
    const company = positions(socket, "project:updated");
    const topic = positions(socket, "task:moved");
    const typing = positions(socket, "user:typing");
    const cursors = positions(socket, "cursor:moved");

    const emitted: Array<StreamPosition | null> = [];
    for (let n = 1; n <= 5; n++) emitted.push(await server.engine.toCompany("acme").emit("project:updated", { n }));
    for (let n = 1; n <= 3; n++) emitted.push(await server.engine.toTopic("acme", "project:p1").emit("task:moved", { n }));
    server.engine.toCompany("acme").volatile.emit("user:typing", { userId: "bob" });
    server.engine.toTopic("acme", "project:p1").volatile.emit("cursor:moved", { x: 1 });
    await waitFor(() => company.length === 5 && topic.length === 3 && typing.length === 1 && cursors.length === 1);

    const epoch = company[0]!.position!.epoch;
    expect(company.map((heard) => heard.position)).toEqual([1, 2, 3, 4, 5].map((offset) => ({ stream: "company", epoch, offset })));
    expect(topic.map((heard) => heard.position?.offset)).toEqual([1, 2, 3]);
    expect(topic[0]!.position!.stream).toBe("topic:project:p1");
    expect(emitted.map((position) => position?.offset)).toEqual([1, 2, 3, 4, 5, 1, 2, 3]);
    expect(typing).toEqual([{ data: { userId: "bob" } }]);
    expect(cursors).toEqual([{ data: { x: 1 }, position: { stream: "topic:project:p1" } }]);
  });

  test("data the application changes after emit (a BigInt, a cycle, a field) changes nothing stored or sent, and the stream goes on", async () => {
    server = await startTestServer();
    const socket = await connect(alice);
    const heard = positions(socket, "stock:updated");
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const toAcme = server.engine.toCompany("acme");
      const withBigInt: Record<string, unknown> = { a: 1 };
      const cyclic: Record<string, unknown> = { b: 2 };
      const changed = { c: 3 };
      const sent = [toAcme.emit("stock:updated", withBigInt), toAcme.emit("stock:updated", cyclic), toAcme.emit("stock:updated", changed)];
      withBigInt.big = 10n;
      cyclic.self = cyclic;
      changed.c = 99;
      const positionsSent = await Promise.all(sent);
      for (let n = 1; n <= 20; n++) await toAcme.emit("stock:updated", { n });
      await waitFor(() => heard.length === 23, { message: "every broadcast, those after the changed ones included" });

      expect(positionsSent.map((position) => position?.offset)).toEqual([1, 2, 3]);
      expect(heard.slice(0, 3).map(({ data }) => data)).toEqual([{ a: 1 }, { b: 2 }, { c: 3 }]);
      const read = await request(socket, "stream:read", { stream: "company", epoch: positionsSent[0]!.epoch, after: 0 });
      expect(read.ok).toBe(true);
      expect(read.entries.slice(0, 3).map(({ data }: { data: unknown }) => data)).toEqual([{ a: 1 }, { b: 2 }, { c: 3 }]);
      // A volatile broadcast goes out at once; a value JSON cannot carry is refused with a code, not the encoder's throw.
      expect(() => toAcme.volatile.emit("stock:updated", { big: 1n })).toThrow(expect.objectContaining({ code: "INVALID_PAYLOAD" }));
      await sleep(50);
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  test("stream:read returns what came after an offset, in order, a page at a time, for the reader's own company only", async () => {
    server = await startTestServer();
    const socket = await connect(alice);
    const outsider = await connect({ userId: "eve", companyId: "globex" });
    let epoch = "";
    for (let n = 1; n <= 250; n++) epoch = (await server.engine.toCompany("acme").emit("stock:updated", { n }))!.epoch;
    await server.engine.toCompany("globex").emit("stock:updated", { n: "globex" });

    const first = await request(socket, "stream:read", { stream: "company", epoch, after: 20 });
    expect(first).toMatchObject({ ok: true, epoch, top: 250, resync: null });
    expect(first.entries).toHaveLength(200);
    expect(first.entries[0]).toMatchObject({ offset: 21, event: "stock:updated", data: { n: 21 }, ts: expect.any(Number) });
    const second = await request(socket, "stream:read", { stream: "company", epoch, after: 220 });
    expect(second.entries.map((entry: { offset: number }) => entry.offset)).toEqual(Array.from({ length: 30 }, (_, index) => 221 + index));
    expect(await request(socket, "stream:read", { stream: "company", epoch, after: 250 })).toMatchObject({ ok: true, entries: [], resync: null });

    // Globex's reader names Acme's epoch: its own company's stream is another stream.
    const crossed = await request(outsider, "stream:read", { stream: "company", epoch, after: 0 });
    expect(crossed).toMatchObject({ ok: true, resync: { reason: "EPOCH_CHANGED" } });
    expect(JSON.stringify(crossed)).not.toContain('"n":1');
  });

  test("subscribing to ever new topics holds the company's streams to its bytes, and a topic subscribed to since keeps its epoch", async () => {
    const topic = (index: number) => `project:${String(index).padStart(4, "0")}`;
    const perStream = STREAM_RECORD_OVERHEAD_BYTES + `topic:${topic(0)}`.length;
    server = await startTestServer({
      authorize: () => true,
      streams: memoryStreamStore({ maxBytesPerCompany: 20 * perStream + 1_000 }),
      limits: { eventsPerSecond: 1_000, userEventsPerSecond: 1_000 },
    });
    const socket = await connect(alice);
    const starts: string[] = [];
    for (let index = 0; index < 100; index++) {
      const answer = await request(socket, "topic:subscribe", { topic: topic(index) });
      starts.push(answer.start.epoch);
      await request(socket, "topic:unsubscribe", { topic: topic(index) });
    }
    const latest = await request(socket, "topic:subscribe", { topic: topic(99) });
    expect(latest.start).toEqual({ stream: `topic:${topic(99)}`, epoch: starts[99], top: 0 });
    // A broadcast to it goes out in the epoch its subscriber was told.
    expect(await server.engine.toTopic("acme", topic(99)).emit("task:moved", {})).toMatchObject({ epoch: starts[99], offset: 1 });
    // The first topic's stream was forgotten for room: a subscriber now is told a new epoch.
    expect((await request(socket, "topic:subscribe", { topic: topic(0) })).start.epoch).not.toBe(starts[0]);
  });

  test("a topic's stream can be read only by a socket subscribed to it", async () => {
    server = await startTestServer({ authorize: (_principal, request) => request.action !== "topic:subscribe" || request.topic !== "budget" });
    const socket = await connect(alice);
    const position = await server.engine.toTopic("acme", "budget").emit("budget:changed", { total: 1 });
    const refused = await request(socket, "stream:read", { stream: "topic:budget", epoch: position!.epoch, after: 0 });
    expect(refused).toMatchObject({ ok: false, error: { code: "FORBIDDEN" } });
    await request(socket, "topic:subscribe", { topic: "yard" });
    const yard = await server.engine.toTopic("acme", "yard").emit("stock:updated", { n: 1 });
    expect(await request(socket, "stream:read", { stream: "topic:yard", epoch: yard!.epoch, after: 0 })).toMatchObject({ ok: true, entries: [{ offset: 1 }] });
    for (const payload of [null, {}, { stream: "company", epoch: 1, after: 0 }, { stream: "company", epoch: "e", after: -1 }, { stream: "company", epoch: "e", after: 1.5 }]) {
      expect(await request(socket, "stream:read", payload)).toMatchObject({ ok: false, error: { code: "INVALID_PAYLOAD" } });
    }
  });

  test("gaps that cannot be filled answer a coded resync with the stream's current position, never a partial replay", async () => {
    server = await startTestServer({ streams: memoryStreamStore({ size: 10, ttlMs: 300 }), recovery: { maxReplay: 5 } });
    const socket = await connect(alice);
    let position: StreamPosition | null = null;
    for (let n = 1; n <= 12; n++) position = await server.engine.toCompany("acme").emit("stock:updated", { n });
    const { epoch } = position!;

    const trimmed = await request(socket, "stream:read", { stream: "company", epoch, after: 1 });
    expect(trimmed).toMatchObject({ ok: true, epoch, top: 12, entries: [], resync: { reason: "HISTORY_TRIMMED" } });
    const tooMany = await request(socket, "stream:read", { stream: "company", epoch, after: 4 });
    expect(tooMany).toMatchObject({ entries: [], resync: { reason: "TOO_MANY_MISSED" } });
    expect(await request(socket, "stream:read", { stream: "company", epoch, after: 8 })).toMatchObject({ resync: null, entries: [{ offset: 9 }, { offset: 10 }, { offset: 11 }, { offset: 12 }] });
    // A reader filling a hole names the last offset it needs: only that much counts against maxReplay.
    const hole = await request(socket, "stream:read", { stream: "company", epoch, after: 4, until: 7 });
    expect(hole).toMatchObject({ ok: true, resync: null, top: 12 });
    expect(hole.entries.map((entry: { offset: number }) => entry.offset)).toEqual([5, 6, 7, 8, 9, 10, 11, 12]);
    expect(await request(socket, "stream:read", { stream: "company", epoch, after: 4, until: 4 })).toMatchObject({ ok: false, error: { code: "INVALID_PAYLOAD" } });
    expect(await request(socket, "stream:read", { stream: "company", epoch: "another-epoch", after: 8 })).toMatchObject({ entries: [], resync: { reason: "EPOCH_CHANGED" } });
    expect(await request(socket, "stream:read", { stream: "company", epoch, after: 99 })).toMatchObject({ entries: [], resync: { reason: "EPOCH_CHANGED" } });

    await sleep(400);
    await server.engine.toCompany("acme").emit("stock:updated", { n: 13 });
    expect(await request(socket, "stream:read", { stream: "company", epoch, after: 11 })).toMatchObject({ entries: [], resync: { reason: "HISTORY_EXPIRED" } });
    const metrics = await server.engine.metrics();
    for (const reason of ["HISTORY_TRIMMED", "TOO_MANY_MISSED", "EPOCH_CHANGED", "HISTORY_EXPIRED"]) expect(metrics).toContain(`truss_stream_resyncs_total{reason="${reason}"}`);
  });

  test("when the stream store is down, broadcasts still go out live without a position and the failure is counted", async () => {
    const healthy = memoryStreamStore();
    let down = false;
    const flaky: StreamStore = {
      append: (key, event, data) => (down ? Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:6379")) : healthy.append(key, event, data)),
      read: (key, after, limit) => (down ? Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:6379")) : healthy.read(key, after, limit)),
      trimmed: () => healthy.trimmed(),
    };
    server = await startTestServer({ streams: flaky });
    const socket = await connect(alice);
    const heard = positions(socket, "stock:updated");
    expect(await server.engine.toCompany("acme").emit("stock:updated", { n: 1 })).toMatchObject({ offset: 1 });
    down = true;
    expect(await server.engine.toCompany("acme").emit("stock:updated", { n: 2 })).toBeNull();
    const read = await request(socket, "stream:read", { stream: "company", epoch: heard[0]?.position?.epoch ?? "x", after: 0 });
    expect(read).toMatchObject({ ok: false, error: { code: "STORE_UNAVAILABLE" } });
    await waitFor(() => heard.length === 2);
    expect(heard[1]).toEqual({ data: { n: 2 } });
    expect(await server.engine.metrics()).toMatch(/truss_stream_append_failures_total 1/);
  });

  test("data that is not JSON, too deep or too large is refused before anything is stored or sent", async () => {
    server = await startTestServer({ limits: { maxMessageBytes: 1024, maxDepth: 4 } });
    const socket = await connect(alice);
    const heard = positions(socket, "stock:updated");
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => server.engine.toCompany("acme").emit("stock:updated", { n: 10n } as never)).toThrow(expect.objectContaining({ code: "INVALID_PAYLOAD" }));
    expect(() => server.engine.toCompany("acme").emit("stock:updated", cyclic)).toThrow(expect.objectContaining({ code: "INVALID_PAYLOAD" }));
    expect(() => server.engine.toCompany("acme").emit("stock:updated", { a: { b: { c: { d: { e: 1 } } } } })).toThrow(expect.objectContaining({ code: "INVALID_PAYLOAD" }));
    expect(() => server.engine.toCompany("acme").emit("stock:updated", { text: "x".repeat(2000) })).toThrow(expect.objectContaining({ code: "PAYLOAD_TOO_LARGE" }));
    const position = await server.engine.toCompany("acme").emit("stock:updated", { n: 1 });
    expect(position?.offset).toBe(1);
    await waitFor(() => heard.length === 1);
  });
});
