import fc from "fast-check";
import type { RealtimeEngine, RealtimeEngineOptions } from "@truss/core";
import { createClient, open, request, requireRedisOrSkip, signToken, startRedisServer, type RedisServer } from "@truss/test-utils";
import type { Socket as ClientSocket } from "socket.io-client";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { memoryBackend, redisBackend, type Backend, type Topology } from "./support/backends.js";
import { Bystander } from "./support/bystander.js";
import { ackOutcome, isErrorPayload } from "./support/contract.js";
import { CHAOS_RUNS, CHAOS_SEED, scaled } from "./support/env.js";
import { mib } from "./support/figures.js";
import { buildFrame, SENTINEL_ACK_ID, sessionSpec, type SessionSpec } from "./support/frames.js";
import { gcAvailable, RssPeak, settledHeapUsed } from "./support/memory.js";
import { RawSession } from "./support/raw-session.js";
import { emitForAnswer, preview } from "./support/sockets.js";
import { APP_EVENTS, buildValue, eventSpec, KNOWN_HAZARDS, type EventSpec, type TokenName } from "./support/values.js";
import { chaosFile } from "./support/chaos-file.js";

/**
 * Random and mutated client input over real sockets: every event is
 * answered with a coded ack (or a coded `error` event), nothing escapes as
 * an unhandled error, and a well-behaved client of the same company is still
 * served after every run. Raw sessions send what no client library would.
 */

const COMPANY = "fuzz-co";
const FUZZER = { userId: "fuzzer", companyId: COMPANY, deviceId: "fuzz-device" };
const WATCHER = { userId: "watcher", companyId: COMPANY, deviceId: "watch-device" };
/** The transport's cap (`maxHttpBufferSize`: four times the 64 KiB payload limit, at least 1 MiB): past it a frame closes the connection. */
const TRANSPORT_CAP_BYTES = 1024 * 1024;
const ACK_TIMEOUT_MS = 10_000;

const tokens: Record<TokenName, string> = {
  same: signToken(FUZZER),
  otherCompany: signToken({ ...FUZZER, companyId: "other-co" }),
  expired: signToken(FUZZER, { expiresInSec: -60 }),
  garbage: "not.a.jwt",
  empty: "",
  huge: "e".repeat(20_000),
};

/** Object.prototype's own members before any input: the server shares this process, so pollution shows here. */
const PROTOTYPE_MEMBERS = new Set(Object.getOwnPropertyNames(Object.prototype));

/**
 * Default limits, except the event rates (per socket, per user and in bytes):
 * every event should reach its checks, not the rate limiter. A policy with every kind of answer (allow, refuse,
 * async, throw) and declared topic patterns, so fuzzed input reaches them too.
 */
const ENGINE_OPTIONS: Partial<RealtimeEngineOptions> = {
  limits: { eventsPerSecond: 1_000_000, userBytesPerSecond: 1024 ** 4, authorizeTimeoutMs: 500 },
  topics: { patterns: ["project:{projectId}", { pattern: "crew:{crewId}", params: { crewId: /^\d+$/ } }] },
  authorize: async (_principal, request) => {
    if (request.action === "topic:subscribe" && request.pattern === "crew:{crewId}") throw new Error("the crew roster is down");
    if (request.action === "topic:subscribe") return request.params.projectId !== "deny";
    return request.action !== "document:rollback" || { message: "Only managers roll back." };
  },
};

const { figures, crashes } = chaosFile("wire-fuzz", { seeded: true });

function registerHandlers(engine: RealtimeEngine): void {
  engine.handle(APP_EVENTS.echo, (data) => ({ echoed: data }));
  engine.handle(APP_EVENTS.silent, () => undefined);
}

/** The fuzzing client and its bystander on one topology; the fuzzer reconnects if a run dropped it. */
class Harness {
  readonly errorEvents: unknown[] = [];
  fuzzerReconnects = 0;
  private fuzzerSocket: ClientSocket | undefined;
  readonly bystander: Bystander;

  constructor(readonly topology: Topology) {
    for (const node of topology.nodes) registerHandlers(node.engine);
    this.bystander = new Bystander(topology.b, WATCHER);
  }

  async fuzzer(): Promise<ClientSocket> {
    if (this.fuzzerSocket?.connected) return this.fuzzerSocket;
    if (this.fuzzerSocket) this.fuzzerReconnects += 1;
    this.fuzzerSocket?.close();
    const socket = createClient(this.topology.b.url, FUZZER);
    socket.on("error", (payload: unknown) => this.errorEvents.push(payload));
    this.fuzzerSocket = await open(socket);
    return socket;
  }

  /** Throws if an `error` event so far was not coded, a prototype was polluted, or the bystander is not served. */
  async expectHealthy(): Promise<void> {
    const uncoded = this.errorEvents.filter((payload) => !isErrorPayload(payload));
    if (uncoded.length > 0) throw new Error(`error events outside the protocol: ${preview(uncoded)}`);
    const polluted = Object.getOwnPropertyNames(Object.prototype).filter((name) => !PROTOTYPE_MEMBERS.has(name));
    if (polluted.length > 0) throw new Error(`Object.prototype gained ${preview(polluted)}`);
    await this.bystander.expectServed(this.topology.a);
  }

  close(): void {
    this.fuzzerSocket?.close();
    this.bystander.close();
  }
}

/** Sends one run's events and checks each answer; throws (failing the run) on any breach of the contract. */
async function sendEvents(harness: Harness, batch: EventSpec[], section: string): Promise<void> {
  figures.count(section, "runs");
  for (const spec of batch) {
    const socket = await harness.fuzzer();
    const payload = spec.payload === undefined ? undefined : buildValue(spec.payload, tokens);
    const args = spec.payload === undefined ? [] : [payload];
    const frameBytes = Buffer.byteLength(JSON.stringify([spec.event, ...args]));
    figures.count(section, "events sent");
    if (!spec.ack) {
      try {
        socket.emit(spec.event, ...args);
      } catch {
        figures.outcome(section, "not sent: the client could not encode it");
      }
      continue;
    }
    const result = await emitForAnswer(socket, spec.event, args, ACK_TIMEOUT_MS);
    if ("notEncoded" in result) {
      figures.outcome(section, "not sent: the client could not encode it");
      continue;
    }
    if ("disconnected" in result) {
      if (frameBytes > TRANSPORT_CAP_BYTES) {
        figures.outcome(section, "closed: frame past the transport cap");
        continue;
      }
      throw new Error(`"${spec.event}" (${frameBytes} bytes) disconnected the client (${result.disconnected}) instead of being answered`);
    }
    if ("timedOut" in result) throw new Error(`"${spec.event}" (${frameBytes} bytes) got no ack within ${ACK_TIMEOUT_MS} ms`);
    const outcome = ackOutcome(result.ack);
    if (outcome === null) throw new Error(`"${spec.event}" was answered outside the protocol: ${preview(result.ack)}`);
    figures.outcome(section, outcome);
    if (outcome === "STORE_UNAVAILABLE") {
      throw new Error(`"${spec.event}" with a bad value was reported as a store outage: ${preview(result.ack)}`);
    }
  }
  await harness.expectHealthy();
}

/** Opens one raw session, sends its frames, checks every answer, and closes it; throws on any breach. */
async function sendSession(harness: Harness, spec: SessionSpec, section: string): Promise<void> {
  figures.count(section, "sessions");
  const session = await RawSession.open({ port: harness.topology.b.port });
  try {
    let connected = false;
    if (spec.auth === "valid") {
      const answer = await session.connect({ token: tokens.same });
      if ("error" in answer) throw new Error(`a valid CONNECT was refused: ${preview(answer.error)}`);
      connected = true;
    } else if (spec.auth !== "skip") {
      const auth = { noToken: "40", garbageAuth: '40{"token":12,"deviceId":{"$gt":""}}', otherShape: "40[1,2]" }[spec.auth];
      session.sendText(auth);
      await session.until(() => session.connectErrors.length > 0 || session.sid !== undefined || session.isClosed, 5_000);
      if (session.sid !== undefined) throw new Error(`CONNECT ${auth} was accepted`);
    }
    for (const frame of spec.frames) {
      const { data, binary } = buildFrame(frame, tokens);
      if (typeof data === "string") session.sendText(data);
      else session.sendBytes(data, binary);
    }
    if (connected) {
      session.sendText(`42${SENTINEL_ACK_ID}["presence:list",{}]`);
      await session.until(() => session.acks.has(SENTINEL_ACK_ID) || session.isClosed, 5_000);
      if (!session.isClosed && !session.acks.has(SENTINEL_ACK_ID)) throw new Error("the session stayed open but stopped answering");
    } else {
      await session.until(() => session.isClosed, 100);
    }
    for (const [id, args] of session.acks) {
      const outcome = ackOutcome(args[0]);
      if (outcome === null) throw new Error(`ack ${id} outside the protocol: ${preview(args)}`);
      if (id !== SENTINEL_ACK_ID) figures.outcome(section, outcome);
    }
    for (const [name, payload] of session.events) {
      if (name !== "error") continue;
      if (!isErrorPayload(payload)) throw new Error(`an error event outside the protocol: ${preview(payload)}`);
      figures.outcome(section, `error event ${payload.code}`);
    }
    for (const { nsp, data } of session.connectErrors) {
      if (nsp !== "/") continue;
      const coded = (data as { data?: unknown } | null)?.data;
      if (!isErrorPayload(coded)) throw new Error(`a connect_error without a code: ${preview(data)}`);
      figures.outcome(section, `connect_error ${coded.code}`);
    }
    figures.count(section, session.isClosed ? "closed by the server" : "still open after the frames");
  } finally {
    session.terminate();
  }
  await harness.expectHealthy();
}

/** fast-check's settings: this run's seed, and a time limit that also bounds shrinking over real sockets. */
const fuzzParameters = <T>(numRuns: number, timeLimitMs: number, examples: T[] = []) => ({
  numRuns,
  seed: CHAOS_SEED,
  examples,
  plugins: [fc.interruptAfterTimeLimit(timeLimitMs)],
});

function fuzzCases(backend: () => Backend, runs: { events: number; sessions: number }): void {
  let harness: Harness | undefined;
  afterEach(async () => {
    harness?.close();
    await harness?.topology.close();
    harness = undefined;
  });

  test("random protocol events are each answered with a coded ack, and a bystander is served after every run", async () => {
    const section = `${backend().name}: events`;
    harness = new Harness(await backend().start(ENGINE_OPTIONS));
    await harness.fuzzer();
    const heapBefore = await settledHeapUsed();
    const rss = new RssPeak();
    const startedAt = Date.now();
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(eventSpec, { minLength: 1, maxLength: 6 }), (batch) => sendEvents(harness!, batch, section)),
        fuzzParameters(runs.events, 60_000, KNOWN_HAZARDS.map((batch) => [batch] as [EventSpec[]])),
      );
    } finally {
      figures.set(section, "ms", Date.now() - startedAt);
      figures.set(section, "heap growth MiB (documents are kept)", mib((await settledHeapUsed()) - heapBefore));
      figures.set(section, "peak RSS growth MiB", mib(rss.stop()));
      figures.set(section, "fuzzer reconnects", harness.fuzzerReconnects);
      figures.set(section, "bystander reconnects", harness.bystander.reconnects);
    }
    expect(harness.bystander.reconnects).toBe(0);
    expect(crashes.describe()).toEqual([]);
  }, 120_000);

  test("raw Socket.IO sessions with malformed, mismatched and oversized frames never take the server down", async () => {
    const section = `${backend().name}: raw frames`;
    harness = new Harness(await backend().start(ENGINE_OPTIONS));
    const startedAt = Date.now();
    try {
      await fc.assert(
        fc.asyncProperty(sessionSpec, (spec) => sendSession(harness!, spec, section)),
        fuzzParameters(runs.sessions, 60_000),
      );
    } finally {
      figures.set(section, "ms", Date.now() - startedAt);
      figures.set(section, "bystander reconnects", harness.bystander.reconnects);
    }
    expect(harness.bystander.reconnects).toBe(0);
    expect(crashes.describe()).toEqual([]);
  }, 120_000);
}

describe("on the in-memory stores", () => {
  fuzzCases(() => memoryBackend, { events: CHAOS_RUNS, sessions: CHAOS_RUNS });

  /**
   * Refused input must leave nothing behind. With a full collection before
   * each figure the heap may grow by at most 16 MiB over the rounds (64 MiB
   * when no collection can be forced), whatever the number of rounds.
   */
  test("memory stays bounded under a stream of refused input", async () => {
    const section = "memory: refused input";
    const topology = await memoryBackend.start(ENGINE_OPTIONS);
    const harness = new Harness(topology);
    const rounds = scaled(200, 20);
    const bound = gcAvailable ? 16 * 1024 * 1024 : 64 * 1024 * 1024;
    try {
      const socket = await harness.fuzzer();
      const field = "f".repeat(60_000);
      for (let index = 0; index < 4; index++) {
        const created = await request(socket, "document:update", { type: "mem", id: "big", baseVersion: index, changes: { [`f${index}`]: field } });
        expect(created.ok, preview(created)).toBe(true);
      }
      const round = async () => {
        const expectRefused = async (event: string, payload: unknown, code: string) => {
          const outcome = ackOutcome(await request(socket, event, payload, ACK_TIMEOUT_MS));
          figures.outcome(section, outcome ?? "outside the protocol");
          expect(outcome, `${event} refused with ${code}`).toBe(code);
        };
        await expectRefused("document:update", { type: "mem", id: "deep", baseVersion: 0, changes: { x: buildValue({ deep: 2_000, of: "array" }, tokens) } }, "INVALID_PAYLOAD");
        await expectRefused("document:update", { type: "mem", id: "wide", baseVersion: 0, changes: { x: "w".repeat(70_000) } }, "PAYLOAD_TOO_LARGE");
        await expectRefused("document:update", { type: "mem", id: "big", baseVersion: 4, changes: { f4: field } }, "DOCUMENT_TOO_LARGE");
        await expectRefused("chaos:unknown", {}, "UNKNOWN_EVENT");
        await expectRefused("document:get", { type: 1 }, "INVALID_PAYLOAD");
        const poison = await topology.a.engine.toUser(COMPANY, FUZZER.userId).emit("chaos:poison", { n: 1n } as never).then(
          () => "stored",
          (error: { code?: string }) => error?.code ?? String(error),
        );
        figures.outcome(section, `toUser ${poison}`);
        expect(poison).toBe("INVALID_PAYLOAD");
        const raw = await RawSession.open({ port: topology.b.port });
        await raw.connect({ token: tokens.same });
        raw.sendText('451-["chaos:echo",{"_placeholder":true,"num":7}]');
        raw.sendText("42[");
        raw.terminate();
      };
      for (let index = 0; index < 10; index++) await round();
      const heapBefore = await settledHeapUsed();
      const rss = new RssPeak();
      for (let index = 0; index < rounds; index++) await round();
      await harness.expectHealthy();
      const growth = (await settledHeapUsed()) - heapBefore;
      figures.set(section, "rounds", rounds);
      figures.set(section, "heap growth MiB", mib(growth));
      figures.set(section, "heap growth bound MiB", mib(bound));
      figures.set(section, "full collection available", gcAvailable);
      figures.set(section, "peak RSS growth MiB", mib(rss.stop()));
      expect(growth).toBeLessThan(bound);
      expect(crashes.describe()).toEqual([]);
    } finally {
      harness.close();
      await topology.close();
    }
  }, 120_000);
});

describe.runIf(requireRedisOrSkip("chaos wire fuzzing on Redis"))("on Redis, two nodes", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  fuzzCases(() => redisBackend(() => redis), { events: scaled(80, 10), sessions: scaled(40, 5) });
});
