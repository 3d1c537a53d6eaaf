import { isTrussError } from "@truss/core";
import type { InboxMessage } from "@truss/protocol";
import {
  collect,
  connectAs,
  createClient,
  open,
  request,
  requireRedisOrSkip,
  signToken,
  sleep,
  startRedisServer,
  startTcpProxy,
  waitFor,
  type RedisServer,
} from "@truss/test-utils";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { callsTo, countStoreCalls, memoryBackend, redisBackend, type Backend, type Topology } from "./support/backends.js";
import { Bystander } from "./support/bystander.js";
import { ackOutcome } from "./support/contract.js";
import { scaled } from "./support/env.js";
import { mib } from "./support/figures.js";
import { gcAvailable, RssPeak, settledHeapUsed } from "./support/memory.js";
import { RawSession } from "./support/raw-session.js";
import { queuedBytes } from "./support/slow-consumer.js";
import { preview } from "./support/sockets.js";
import { buildValue } from "./support/values.js";
import { chaosFile } from "./support/chaos-file.js";

/**
 * Inputs and conditions that crashed or bloated servers like this one:
 * documents grown field by field past any sane size, payloads nested
 * thousands deep, `toUser` data that JSON cannot carry, handlers returning
 * what cannot be encoded, a client that stops reading, and (on Redis) a
 * restart under load. Each runs on the in-memory stores and, when a
 * redis-server is available, on two engine nodes sharing one.
 */

const COMPANY = "site-co";
const WRITER = { userId: "foreman", companyId: COMPANY, deviceId: "foreman-phone" };
const WATCHER = { userId: "office", companyId: COMPANY, deviceId: "office-pc" };
const BYSTANDER = { userId: "bystander", companyId: COMPANY, deviceId: "bystander-pc" };
const KIB = 1024;
const MIB = 1024 * KIB;
const MAX_DOCUMENT_BYTES = 256 * KIB;
const MAX_HISTORY_ANSWER_BYTES = MIB;
const MAX_BUFFERED_BYTES = MIB;
/** How long redis-server stays down in the restart case: longer than a reconnect attempt, shorter than the presence TTL. */
const OUTAGE_MS = 1_500;
/** How long after Redis is back (or after the send resolved, if later) a resolved message may take to arrive. */
const DELIVERY_BUDGET_MS = 5_000;
/** How long before a Redis stop a resolved send's relay to the other node may still be on its way through Redis. */
const IN_FLIGHT_MS = 100;

const { figures, crashes } = chaosFile("faults");

function faultCases(backend: () => Backend): void {
  let topology: Topology | undefined;
  const sockets: Array<{ close(): void }> = [];
  const calls = new Map<string, number>();
  const start = async (options: Parameters<Backend["start"]>[0] = {}) => {
    calls.clear();
    topology = await backend().start({ wrapStores: countStoreCalls(calls), ...options });
    return topology;
  };
  const track = <T extends { close(): void }>(socket: T): T => {
    sockets.push(socket);
    return socket;
  };
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.close();
    await topology?.close();
    topology = undefined;
    expect(crashes.describe()).toEqual([]);
  });

  test("150 updates each adding a ~60 KB field: refused with DOCUMENT_TOO_LARGE past 256 KiB, history stays answerable, the watcher gets bounded bytes", async () => {
    const section = `${backend().name}: big documents`;
    // The writer sends 150 events (9 MB) in a burst; the rate limits are not what this case is about.
    const { a, b } = await start({ limits: { eventsPerSecond: 10_000, userBytesPerSecond: 1024 * MIB } });
    const writer = track(await connectAs(b.url, WRITER));
    const watcher = track(createClient(b.url, WATCHER));
    let watcherBytes = 0;
    let watcherUpdates = 0;
    watcher.on("document:updated", (update: unknown) => {
      watcherUpdates += 1;
      watcherBytes += Buffer.byteLength(JSON.stringify(update));
    });
    await open(watcher);
    const bystander = new Bystander(b, BYSTANDER);
    track(bystander);

    const field = "p".repeat(60_000);
    let version = 0;
    let applied = 0;
    let firstRefusal: number | null = null;
    const outcomes: string[] = [];
    const writesBefore = callsTo(calls, "documents.compareAndSet");
    for (let index = 0; index < 150; index++) {
      const answer = await request(writer, "document:update", {
        type: "site-report",
        id: "tower-b",
        baseVersion: version,
        changes: { [`photo${index}`]: field },
      });
      const outcome = ackOutcome(answer) ?? `outside the protocol: ${preview(answer)}`;
      figures.outcome(section, outcome === "ok" ? `ok ${answer.status}` : outcome);
      outcomes.push(outcome);
      if (outcome === "ok") {
        applied += 1;
        version = answer.document.version;
      } else {
        firstRefusal ??= index;
      }
    }
    figures.set(section, "applied", applied);
    figures.set(section, "first refusal at update #", firstRefusal === null ? null : firstRefusal + 1);

    // 4 fields of 60 KB fit in 256 KiB, a 5th does not; every later one is refused too and nothing reaches the store.
    expect(applied).toBe(Math.floor(MAX_DOCUMENT_BYTES / 60_000));
    expect(new Set(outcomes.slice(applied))).toEqual(new Set(["DOCUMENT_TOO_LARGE"]));
    expect(callsTo(calls, "documents.compareAndSet") - writesBefore).toBe(applied);

    const current = await request(writer, "document:get", { type: "site-report", id: "tower-b" });
    expect(current.document.version).toBe(applied);
    expect(Buffer.byteLength(JSON.stringify(current.document.data))).toBeLessThanOrEqual(MAX_DOCUMENT_BYTES);

    const history = await request(writer, "document:history", { type: "site-report", id: "tower-b", limit: 100 });
    const historyBytes = Buffer.byteLength(JSON.stringify(history));
    figures.set(section, "history answer KiB", Math.round(historyBytes / KIB));
    expect(history.ok, preview(history)).toBe(true);
    expect(history.versions.length).toBe(applied);
    expect(historyBytes).toBeLessThan(MAX_HISTORY_ANSWER_BYTES + 64 * KIB);

    const rollback = await request(writer, "document:rollback", { type: "site-report", id: "tower-b", toVersion: 1 });
    expect(rollback.ok, preview(rollback)).toBe(true);

    await waitFor(() => watcherUpdates === applied + 1, { message: "the watcher's document:updated for every commit" });
    figures.set(section, "watcher received KiB", Math.round(watcherBytes / KIB));
    expect(watcherBytes).toBeLessThan((applied + 1) * (MAX_DOCUMENT_BYTES + 4 * KIB));
    await bystander.expectServed(a);
  });

  test("2,000-deep arrays in document:update are refused with INVALID_PAYLOAD before any store call; the document stays readable and writable", async () => {
    const section = `${backend().name}: deep nesting`;
    const { a, b } = await start();
    const writer = track(await connectAs(b.url, WRITER));
    const bystander = track(new Bystander(b, BYSTANDER));
    const created = await request(writer, "document:update", { type: "crew", id: "north", baseVersion: 0, changes: { lead: "Ana" } });
    expect(created.ok, preview(created)).toBe(true);

    const documentCallsBefore = callsTo(calls, "documents.");
    for (const [label, deep] of [
      ["2,000-deep arrays", { deep: 2_000, of: "array" }],
      ["2,000-deep objects", { deep: 2_000, of: "object" }],
      ["70-deep arrays", { deep: 70, of: "array" }],
    ] as const) {
      const answer = await request(writer, "document:update", {
        type: "crew",
        id: "north",
        baseVersion: 1,
        changes: { roster: buildValue(deep) },
      });
      figures.outcome(section, `${label}: ${ackOutcome(answer)}`);
      expect(answer, label).toMatchObject({ ok: false, error: { code: "INVALID_PAYLOAD" } });
    }
    expect(callsTo(calls, "documents.") - documentCallsBefore, "document store calls for refused updates").toBe(0);

    const serverSide = await a.engine.documents
      .update(COMPANY, "crew", "north", { baseVersion: 1, changes: { roster: buildValue({ deep: 2_000, of: "array" }) as never } })
      .then(
        () => "stored",
        (error: unknown) => (isTrussError(error) ? error.code : String(error)),
      );
    figures.outcome(section, `engine.documents.update 2,000 deep: ${serverSide}`);
    expect(serverSide).toBe("INVALID_PAYLOAD");

    const read = await request(writer, "document:get", { type: "crew", id: "north" });
    expect(read).toMatchObject({ ok: true, document: { version: 1, data: { lead: "Ana" } } });
    const shallow = await request(writer, "document:update", { type: "crew", id: "north", baseVersion: 1, changes: { roster: [[["Ben"]]] } });
    expect(shallow).toMatchObject({ ok: true, status: "applied", document: { version: 2 } });
    await bystander.expectServed(a);
  });

  test("toUser with a BigInt, a cycle, a function, a Symbol, a Buffer, 2,000-deep or oversize data rejects with a code and stores nothing; the user's next message is delivered and replayed", async () => {
    const section = `${backend().name}: toUser poison`;
    const { a, b } = await start();
    const phone = track(createClient(b.url, WRITER));
    const onPhone = collect<InboxMessage>(phone, "inbox:message");
    await open(phone);
    const circular: Record<string, unknown> = { id: "e1" };
    circular.self = circular;
    const poisons: Array<[string, unknown, string]> = [
      ["a BigInt", { amount: 10n }, "INVALID_PAYLOAD"],
      ["a cycle", circular, "INVALID_PAYLOAD"],
      ["2,000-deep data", buildValue({ deep: 2_000, of: "array" }), "INVALID_PAYLOAD"],
      ["a 70 KB string", { note: "n".repeat(70 * KIB) }, "PAYLOAD_TOO_LARGE"],
      ["a function", { total: () => 1 }, "INVALID_PAYLOAD"],
      ["a Symbol", { tag: Symbol("t") }, "INVALID_PAYLOAD"],
      ["a Buffer", { receipt: Buffer.from("scan") }, "INVALID_PAYLOAD"],
    ];
    const appendsBefore = callsTo(calls, "inbox.append");
    for (const [label, data, code] of poisons) {
      const failure = await a.engine
        .toUser(COMPANY, WRITER.userId)
        .emit("expense:approved", data as never)
        .then(
          () => "stored",
          (error: unknown) => (isTrussError(error) ? error.code : `not a TrussError: ${String(error)}`),
        );
      figures.outcome(section, `${label}: ${failure}`);
      expect(failure, label).toBe(code);
    }
    expect(callsTo(calls, "inbox.append") - appendsBefore, "inbox appends for refused messages").toBe(0);

    const next = await a.engine.toUser(COMPANY, WRITER.userId).emit("expense:approved", { id: "e2" });
    await waitFor(() => onPhone.some((message) => message.id === next.id), { message: "the next message, live" });
    expect(onPhone.map((message) => message.data)).toEqual([{ id: "e2" }]);

    // A second device and the first one coming back both replay it (nothing was acknowledged), and nothing else.
    phone.close();
    const tablet = track(createClient(b.url, { ...WRITER, deviceId: "foreman-tablet" }));
    const onTablet = collect<InboxMessage>(tablet, "inbox:message");
    await open(tablet);
    const again = track(createClient(a.url, WRITER));
    const onAgain = collect<InboxMessage>(again, "inbox:message");
    await open(again);
    await waitFor(() => onTablet.length > 0 && onAgain.length > 0, { message: "the replay on both devices" });
    await sleep(100);
    expect(onTablet.map((message) => message.id)).toEqual([next.id]);
    expect(onAgain.map((message) => message.id)).toEqual([next.id]);
    const after = await a.engine.toUser(COMPANY, WRITER.userId).emit("expense:approved", { id: "e3" });
    await waitFor(() => onTablet.some((message) => message.id === after.id), { message: "a later message, live" });
  });

  test("handlers returning a BigInt or a cycle, or throwing, are answered INTERNAL_ERROR or HANDLER_ERROR; every broadcast still reaches a bystander", async () => {
    const section = `${backend().name}: poisoned handlers`;
    const { a, b } = await start();
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const handlers: Record<string, (data: unknown, context: { broadcast(event: string, data: unknown): void }) => unknown> = {
      "chaos:bigint": () => ({ total: 2n ** 70n }),
      "chaos:cycle": () => circular,
      "chaos:throws": () => {
        throw new Error("db password is hunter2");
      },
      "chaos:rejects": () => Promise.reject(new Error("db password is hunter2")),
      "chaos:throws-string": () => {
        throw "db password is hunter2";
      },
      "chaos:broadcasts-bigint": (_data, { broadcast }) => broadcast("chaos:bad", { n: 1n }),
      "chaos:broadcasts-cycle": (_data, { broadcast }) => broadcast("chaos:bad", circular),
    };
    for (const node of new Set([a, b])) for (const [event, handler] of Object.entries(handlers)) node.engine.handle(event, handler as never);
    const caller = track(await connectAs(b.url, WRITER));
    const bystander = track(new Bystander(b, BYSTANDER));
    const load = track(await connectAs(b.url, WATCHER));
    const heard = collect<{ seq: number }>(load, "chaos:load");
    let seq = 0;
    for (const event of Object.keys(handlers)) {
      const answer = await request(caller, event, {});
      const outcome = ackOutcome(answer) ?? `outside the protocol: ${preview(answer)}`;
      figures.outcome(section, `${event}: ${outcome}`);
      expect(["INTERNAL_ERROR", "HANDLER_ERROR"], `${event} answered ${preview(answer)}`).toContain(outcome);
      expect(JSON.stringify(answer)).not.toContain("hunter2");
      a.engine.toCompany(COMPANY).emit("chaos:load", { seq: (seq += 1) });
      await bystander.expectServed(a);
    }
    await waitFor(() => heard.length === seq, { message: "every broadcast sent between the poisoned calls" });
    expect(heard.map((payload) => payload.seq)).toEqual(Array.from({ length: seq }, (_, index) => index + 1));
  });

  /**
   * A client behind a proxy that stops reading while the company gets about
   * 600 KB/s of broadcasts. The kernel's socket buffers absorb the first few
   * MB; after that the server holds the bytes, and must drop the socket once
   * it holds more than `maxBufferedBytes` (1 MiB, checked every 250 ms).
   * Bounds: the socket is gone within 30 s of the stall and within 2 s of
   * the server holding more than 1 MiB for it; the server never holds more
   * than 2 MiB for it; the heap grows by at most 32 MiB (after a full
   * collection; 128 MiB without one) and peak RSS by at most 256 MiB; the
   * healthy clients get every broadcast, in order.
   */
  test("a client that stops reading is disconnected as a slow consumer while healthy clients get every broadcast, and memory stays bounded", async () => {
    const section = `${backend().name}: stalled reader`;
    const { a, b } = await start();
    const proxy = await startTcpProxy(b.port);
    const stalled = await RawSession.open({ port: proxy.port });
    track({ close: () => stalled.terminate() });
    track({ close: () => void proxy.close() });
    const connected = await stalled.connect({ token: signToken({ userId: "frozen-tab", companyId: COMPANY, deviceId: "frozen" }) });
    if (!("sid" in connected)) throw new Error(`the stalled client could not connect: ${preview(connected.error)}`);
    const healthy = [track(await connectAs(b.url, WATCHER)), track(await connectAs(a.url, BYSTANDER))];
    const heard = healthy.map((socket) => collect<{ seq: number }>(socket, "chaos:load"));

    const heapBefore = await settledHeapUsed();
    const rss = new RssPeak();
    const blob = "s".repeat(30 * KIB);
    proxy.stallDownstream();
    const stalledAt = Date.now();
    let seq = 0;
    let peakQueued = 0;
    let overCapAt: number | null = null;
    let goneAt: number | null = null;
    while (Date.now() - stalledAt < 30_000) {
      a.engine.toCompany(COMPANY).emit("chaos:load", { seq: (seq += 1), blob });
      await sleep(50);
      const queued = queuedBytes(b, connected.sid);
      if (queued === null) {
        goneAt = Date.now();
        break;
      }
      peakQueued = Math.max(peakQueued, queued);
      if (queued > MAX_BUFFERED_BYTES) overCapAt ??= Date.now();
    }
    const sentWhileStalled = seq;
    for (let extra = 0; extra < 10; extra++) {
      a.engine.toCompany(COMPANY).emit("chaos:load", { seq: (seq += 1), blob });
      await sleep(20);
    }
    await waitFor(() => heard.every((received) => received.length >= seq), { timeoutMs: 10_000, message: "every broadcast on the healthy clients" });
    const heapGrowth = (await settledHeapUsed()) - heapBefore;
    const rssGrowth = rss.stop();

    figures.set(section, "broadcast while stalled MiB", mib(sentWhileStalled * blob.length));
    figures.set(section, "gone after ms", goneAt === null ? null : goneAt - stalledAt);
    figures.set(section, "gone after passing the cap ms", goneAt === null || overCapAt === null ? null : goneAt - overCapAt);
    figures.set(section, "peak held for it MiB", mib(peakQueued));
    figures.set(section, "heap growth MiB", mib(heapGrowth));
    figures.set(section, "peak RSS growth MiB", mib(rssGrowth));
    figures.set(section, "bounds", "gone < 30 s and < 2 s after the cap; held < 2 MiB; heap < 32 MiB (gc) / 128 MiB; RSS < 256 MiB");

    expect(goneAt, "the stalled socket is still connected after 30 s").not.toBeNull();
    if (overCapAt !== null) expect(goneAt! - overCapAt).toBeLessThan(2_000);
    expect(peakQueued).toBeLessThan(2 * MIB);
    for (const received of heard) expect(received.map((payload) => payload.seq)).toEqual(Array.from({ length: seq }, (_, index) => index + 1));
    expect(heapGrowth).toBeLessThan(gcAvailable ? 32 * MIB : 128 * MIB);
    expect(rssGrowth).toBeLessThan(256 * MIB);
  }, 60_000);
}

describe("on the in-memory stores", () => {
  faultCases(() => memoryBackend);
});

describe.runIf(requireRedisOrSkip("chaos fault cases on Redis"))("on Redis, two nodes", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  faultCases(() => redisBackend(() => redis));

  /**
   * Node A sends to a user whose device is on node B, one message after
   * another, while redis-server is restarted (empty). Sends may fail while it
   * is down, with a code; every send that resolved must reach the device,
   * which stays connected throughout, within 5 s of Redis being back. One
   * exception, which a relay through Redis cannot avoid: a send resolved as Redis was
   * stopping (its append confirmed, its relay to node B still on its way
   * through Redis) is lost with Redis's data when it comes back empty, since
   * node B's catch-up reads an empty inbox. Those, resolved from
   * IN_FLIGHT_MS before the stop until it finished, are counted, not
   * required; when Redis persistence kept their append, the catch-up delivers them.
   */
  test("a Redis restart under toUser load: every resolved message reaches the connected device without a reconnect, but one in flight as Redis stopped", async () => {
    const section = "redis: restart under load";
    const topology = await redisBackend(() => redis).start();
    const device = createClient(topology.b.url, WRITER);
    const arrivedAt = new Map<number, number>();
    device.on("inbox:message", (message: InboxMessage<{ n: number }>) => {
      if (!arrivedAt.has(message.data.n)) arrivedAt.set(message.data.n, Date.now());
    });
    const disconnects = collect<string>(device, "disconnect");
    try {
      await open(device);
      const resolvedAt = new Map<number, number>();
      const refusals: string[] = [];
      let sending = true;
      let n = 0;
      const loop = (async () => {
        while (sending) {
          const current = (n += 1);
          await topology.a.engine
            .toUser(COMPANY, WRITER.userId)
            .emit("chaos:seq", { n: current })
            .then(
              () => resolvedAt.set(current, Date.now()),
              (error: unknown) => refusals.push(isTrussError(error) ? error.code : `not a TrussError: ${String(error)}`),
            );
          await sleep(20);
        }
      })();
      await sleep(scaled(1_000, 500));
      const stoppedAt = Date.now();
      await redis.stop();
      const downAt = Date.now();
      await sleep(OUTAGE_MS);
      await redis.restart();
      const backAt = Date.now();
      const resolvedBeforeBack = resolvedAt.size;
      await sleep(3_000);
      sending = false;
      await loop;

      const inFlight = (at: number) => at >= stoppedAt - IN_FLIGHT_MS && at <= downAt;
      const missing = () => [...resolvedAt].filter(([value, at]) => !arrivedAt.has(value) && !inFlight(at)).map(([value]) => value);
      await waitFor(() => missing().length === 0, { timeoutMs: DELIVERY_BUDGET_MS, message: "every resolved message on the device" }).catch(
        () => undefined,
      );
      // A message resolved before the outage may wait for Redis to come back; after that it has the budget.
      const late = [...resolvedAt].filter(([value, at]) => !inFlight(at) && (arrivedAt.get(value) ?? Infinity) - Math.max(at, backAt) > DELIVERY_BUDGET_MS);
      const lags = [...resolvedAt].filter(([value]) => arrivedAt.has(value)).map(([value, at]) => arrivedAt.get(value)! - at);
      for (const code of refusals) figures.outcome(section, code);
      figures.set(section, "sent", n);
      figures.set(section, "resolved", resolvedAt.size);
      figures.set(section, "resolved after Redis was back", resolvedAt.size - resolvedBeforeBack);
      figures.set(section, "outage ms", backAt - stoppedAt);
      figures.set(section, "slowest delivery after resolve ms", Math.max(0, ...lags));
      figures.set(section, "resolved but not delivered", missing().length);
      figures.set(
        section,
        "resolved as Redis stopped, lost with its data",
        [...resolvedAt].filter(([value, at]) => inFlight(at) && !arrivedAt.has(value)).length,
      );
      figures.set(section, "device disconnects", disconnects.length);

      expect(disconnects).toEqual([]);
      expect(refusals.filter((code) => code.startsWith("not a TrussError"))).toEqual([]);
      expect(resolvedAt.size - resolvedBeforeBack, "sends resolved again after the restart").toBeGreaterThan(0);
      expect(missing(), `resolved but not delivered (of ${resolvedAt.size})`).toEqual([]);
      expect(late.map(([value]) => value), `delivered more than ${DELIVERY_BUDGET_MS} ms after Redis was back`).toEqual([]);
      expect(crashes.describe()).toEqual([]);
    } finally {
      device.close();
      await redis.restart().catch(() => undefined);
      await topology.close();
    }
  }, 60_000);
});
