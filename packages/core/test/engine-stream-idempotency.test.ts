import { connect, type TrussClient } from "@truss/client";
import { memoryStreamStore, type StreamStore } from "@truss/core";
import type { StreamPosition } from "@truss/protocol";
import { connectAs, request, signToken, sleep, startTestServer, waitFor, type TestClaims, type TestServer } from "@truss/test-utils";
import type { Socket as ClientSocket } from "socket.io-client";
import { afterEach, describe, expect, test } from "vitest";

let server: TestServer;
const sockets: ClientSocket[] = [];
const clients: TrussClient[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  for (const client of clients.splice(0)) client.close();
  await server?.close();
});

const alice = { userId: "alice", companyId: "acme", deviceId: "alice-phone" };
const acmeCompany = { companyId: "acme", stream: "company" };
/** Long enough for a broadcast sent on loopback to have arrived. */
const SETTLE_MS = 150;

/** A `@truss/client` device that records what its app is handed for `event`. */
async function device(claims: TestClaims & { deviceId: string }, event: string): Promise<{ client: TrussClient; heard: unknown[] }> {
  const client = connect(server.url, {
    token: signToken(claims),
    deviceId: claims.deviceId,
    reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
    socketOptions: { transports: ["websocket"] },
  });
  clients.push(client);
  const heard: unknown[] = [];
  client.on(event, (data) => void heard.push(data));
  await waitFor(() => client.status === "connected", { message: "the device to connect" });
  return { client, heard };
}

/** A raw socket that records every `event` on the wire with its position: what re-sends look like before the client drops them. */
async function wire(claims: TestClaims, event: string): Promise<Array<{ data: unknown; position?: StreamPosition }>> {
  const socket = await connectAs(server.url, claims);
  sockets.push(socket);
  const heard: Array<{ data: unknown; position?: StreamPosition }> = [];
  socket.on(event, (data: unknown, position?: StreamPosition) => heard.push(position ? { data, position } : { data }));
  return heard;
}

/** A memory store whose next `failures` appends store the entry and then reject, as a reply lost after the write landed would. */
function lostReplies(inner: StreamStore = memoryStreamStore()): { store: StreamStore; failures: number; appends: number } {
  const state = {
    failures: 0,
    appends: 0,
    store: {
      ...inner,
      append: async (...args: Parameters<StreamStore["append"]>) => {
        state.appends += 1;
        const result = await inner.append(...args);
        if (state.failures > 0) {
          state.failures -= 1;
          throw new Error("Command timed out");
        }
        return result;
      },
      read: inner.read.bind(inner),
      trimmed: inner.trimmed.bind(inner),
    } satisfies StreamStore,
  };
  return state;
}

describe("toCompany and toTopic with an idempotency key", () => {
  test("a repeat stores nothing and resolves with the first position; the device is handed the event once", async () => {
    server = await startTestServer();
    const phone = await device(alice, "expense:approved");
    const onWire = await wire({ userId: "bob", companyId: "acme" }, "expense:approved");
    const toAcme = server.engine.toCompany("acme");

    const first = await toAcme.emit("expense:approved", { expenseId: "e-1", amount: 120 }, { idempotencyKey: "outbox-1" });
    expect(first).toEqual({ stream: "company", epoch: expect.any(String), offset: 1 });
    // The relay retries the same row: same key, and here even different data.
    const repeat = await toAcme.emit("expense:approved", { expenseId: "e-1", amount: 999 }, { idempotencyKey: "outbox-1" });
    expect(repeat).toEqual(first);
    const next = await toAcme.emit("expense:approved", { expenseId: "e-2", amount: 80 }, { idempotencyKey: "outbox-2" });
    expect(next).toEqual({ ...first, offset: 2 });
    // A repeat after later entries still answers with the first position.
    expect(await toAcme.emit("expense:approved", { expenseId: "e-1", amount: 120 }, { idempotencyKey: "outbox-1" })).toEqual(first);

    await waitFor(() => onWire.length === 4, { message: "every send and re-send on the wire" });
    await sleep(SETTLE_MS);
    // Each re-send carries the first entry (its data, not the repeat's) under the first position.
    expect(onWire).toEqual([
      { data: { expenseId: "e-1", amount: 120 }, position: first },
      { data: { expenseId: "e-1", amount: 120 }, position: first },
      { data: { expenseId: "e-2", amount: 80 }, position: next },
      { data: { expenseId: "e-1", amount: 120 }, position: first },
    ]);
    expect(phone.heard).toEqual([
      { expenseId: "e-1", amount: 120 },
      { expenseId: "e-2", amount: 80 },
    ]);

    const socket = await connectAs(server.url, alice);
    sockets.push(socket);
    const read = await request(socket, "stream:read", { stream: "company", epoch: first!.epoch, after: 0 });
    expect(read.entries.map(({ offset, data }: { offset: number; data: unknown }) => ({ offset, data }))).toEqual([
      { offset: 1, data: { expenseId: "e-1", amount: 120 } },
      { offset: 2, data: { expenseId: "e-2", amount: 80 } },
    ]);
    expect(await server.engine.metrics()).toMatch(/^truss_stream_duplicates_total 2$/m);
  });

  test("an entry stored by a relay that stopped before sending reaches the device when the repeat comes, once", async () => {
    const store = memoryStreamStore();
    server = await startTestServer({ streams: store });
    const phone = await device(alice, "stock:updated");
    const toAcme = server.engine.toCompany("acme");
    const before = await toAcme.emit("stock:updated", { sku: "rebar-12", qty: 40 });
    await waitFor(() => phone.heard.length === 1, { message: "the first broadcast" });

    // Another process stored the row's broadcast and died before sending it: nothing reaches the device.
    const orphan = await store.append(acmeCompany, "stock:updated", { sku: "rebar-12", qty: 25 }, { idempotencyKey: "row-17" });
    await sleep(SETTLE_MS);
    expect(phone.heard).toHaveLength(1);

    // The relay that takes the row over publishes it again.
    const position = await toAcme.emit("stock:updated", { sku: "rebar-12", qty: 25 }, { idempotencyKey: "row-17" });
    expect(position).toEqual({ stream: "company", epoch: before!.epoch, offset: orphan.entry.offset });
    expect(position!.offset).toBe(2);
    // Sent by the repeat itself, not read after a later broadcast shows the hole: the stream may stay quiet for hours.
    await waitFor(() => phone.heard.length === 2, { timeoutMs: 1000, message: "the orphan, sent by the repeat" });
    await toAcme.emit("stock:updated", { sku: "rebar-12", qty: 10 });
    await waitFor(() => phone.heard.length === 3, { message: "the orphan and the next broadcast" });
    await sleep(SETTLE_MS);
    expect(phone.heard).toEqual([
      { sku: "rebar-12", qty: 40 },
      { sku: "rebar-12", qty: 25 },
      { sku: "rebar-12", qty: 10 },
    ]);
  });

  test("a keyed emit whose append is not confirmed rejects with STORE_UNAVAILABLE and sends nothing; the retry delivers it once", async () => {
    const flaky = lostReplies();
    server = await startTestServer({ streams: flaky.store });
    const phone = await device(alice, "project:updated");
    const onWire = await wire({ userId: "bob", companyId: "acme" }, "project:updated");
    const toAcme = server.engine.toCompany("acme");

    flaky.failures = 1;
    await expect(toAcme.emit("project:updated", { projectId: "p-17", budget: 5 }, { idempotencyKey: "row-1" })).rejects.toMatchObject({
      code: "STORE_UNAVAILABLE",
    });
    await sleep(SETTLE_MS);
    expect(onWire).toEqual([]);
    expect(phone.heard).toEqual([]);

    const retried = await toAcme.emit("project:updated", { projectId: "p-17", budget: 5 }, { idempotencyKey: "row-1" });
    expect(retried?.offset).toBe(1);
    await waitFor(() => phone.heard.length === 1, { message: "the retried broadcast" });
    await sleep(SETTLE_MS);
    expect(phone.heard).toEqual([{ projectId: "p-17", budget: 5 }]);
    expect(onWire).toEqual([{ data: { projectId: "p-17", budget: 5 }, position: retried }]);
    expect(flaky.appends).toBe(2);

    // Without a key nothing changes: a failed append still goes out live, without a position, and resolves null.
    flaky.failures = 1;
    expect(await toAcme.emit("project:updated", { projectId: "p-17", budget: 6 })).toBeNull();
    await waitFor(() => onWire.length === 2, { message: "the live-only broadcast" });
    expect(onWire[1]).toEqual({ data: { projectId: "p-17", budget: 6 } });
  });

  test("keys are per stream: the company stream, a topic and another company each store their own broadcast", async () => {
    server = await startTestServer({ authorize: () => true });
    const socket = await connectAs(server.url, alice);
    sockets.push(socket);
    await request(socket, "topic:subscribe", { topic: "project:p-17" });
    const options = { idempotencyKey: "row-5" };
    const positions = [
      await server.engine.toCompany("acme").emit("site-report:filed", { n: 1 }, options),
      await server.engine.toTopic("acme", "project:p-17").emit("site-report:filed", { n: 2 }, options),
      await server.engine.toCompany("globex").emit("site-report:filed", { n: 3 }, options),
      await server.engine.toTopic("acme", "project:p-18").emit("site-report:filed", { n: 4 }, options),
    ];
    expect(positions.map((position) => [position?.stream, position?.offset])).toEqual([
      ["company", 1],
      ["topic:project:p-17", 1],
      ["company", 1],
      ["topic:project:p-18", 1],
    ]);
    expect(new Set(positions.map((position) => position?.epoch)).size).toBe(4);
    const topicRead = await request(socket, "stream:read", { stream: "topic:project:p-17", epoch: positions[1]!.epoch, after: 0 });
    expect(topicRead.entries.map(({ data }: { data: unknown }) => data)).toEqual([{ n: 2 }]);
  });

  test("a malformed key or options are refused with INVALID_PAYLOAD before the store sees them, and nothing is sent", async () => {
    const counted = lostReplies();
    server = await startTestServer({ streams: counted.store, authorize: () => true });
    const onWire = await wire(alice, "crew:changed");
    const malformed: unknown[] = [
      { idempotencyKey: "" },
      { idempotencyKey: "\ud800" },
      { idempotencyKey: "x".repeat(201) },
      { idempotencyKey: "🏗".repeat(201) },
      { idempotencyKey: 42 },
      { idempotencyKey: null },
      null,
      "row-1",
      7,
    ];
    for (const options of malformed) {
      for (const emitter of [server.engine.toCompany("acme"), server.engine.toTopic("acme", "project:p-17")]) {
        expect(() => emitter.emit("crew:changed", { crew: "north" }, options as { idempotencyKey: string })).toThrow(
          expect.objectContaining({ code: "INVALID_PAYLOAD" }),
        );
      }
    }
    // At the limit, and with no key at all, it is accepted.
    await server.engine.toCompany("acme").emit("crew:changed", { crew: "north" }, { idempotencyKey: "🏗".repeat(200) });
    await server.engine.toCompany("acme").emit("crew:changed", { crew: "north" }, {});
    await waitFor(() => onWire.length === 2, { message: "the two valid broadcasts" });
    expect(counted.appends).toBe(2);
  });

  test("a custom store that ignores the key (the old contract) makes a keyed emit reject with INTERNAL_ERROR, not store twice silently", async () => {
    const inner = memoryStreamStore();
    const outdated: StreamStore = {
      append: async (key, event, data) => {
        const { epoch, entry } = await inner.append(key, event, data);
        return { epoch, entry } as Awaited<ReturnType<StreamStore["append"]>>;
      },
      read: (key, after, limit) => inner.read(key, after, limit),
      trimmed: () => inner.trimmed(),
    };
    server = await startTestServer({ streams: outdated });
    await expect(server.engine.toCompany("acme").emit("project:updated", { n: 1 }, { idempotencyKey: "row-1" })).rejects.toMatchObject({
      code: "INTERNAL_ERROR",
      message: expect.stringContaining("StreamStore contract"),
    });
    // Without a key such a store keeps working.
    expect(await server.engine.toCompany("acme").emit("project:updated", { n: 2 })).toMatchObject({ offset: 2 });
  });
});
