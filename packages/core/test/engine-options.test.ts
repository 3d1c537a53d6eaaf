import { Registry } from "prom-client";
import { Adapter } from "socket.io-adapter";
import { afterEach, describe, expect, test } from "vitest";
import {
  createRealtimeEngine,
  fieldMerge,
  memoryDocumentStore,
  memoryInboxStore,
  memoryPresenceStore,
  memoryScopedPresenceStore,
  memoryRevocationStore,
  memoryStreamStore,
  type InboxStore,
  type RealtimeEngineOptions,
} from "@truss/core";
import { defineEvents } from "@truss/protocol";
import { connectAs, request, startTestServer, testAuth, TEST_SECRET, type TestServer } from "@truss/test-utils";

/**
 * `createRealtimeEngine` refuses what it would otherwise ignore or trip over
 * later: unknown options (at any level it reads) and stores without their
 * methods, each named in the message.
 */

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const create = (options: Record<string, unknown>) => () => createRealtimeEngine({ auth: testAuth(), logger: false, ...options } as RealtimeEngineOptions);

describe("unknown options", () => {
  test("a misspelt option is named, with the option it most likely meant", () => {
    expect(create({ limts: { maxDepth: 8 } })).toThrow(new TypeError("createRealtimeEngine: unknown option `limts` (did you mean `limits`?)."));
    expect(create({ limits: { maxPayloadByte: 1024 } })).toThrow("unknown option `limits.maxPayloadByte` (did you mean `limits.maxPayloadBytes`?)");
    expect(create({ limits: { eventspersecond: 10 } })).toThrow("(did you mean `limits.eventsPerSecond`?)");
    expect(create({ presenceTiming: { ttl: 1000 } })).toThrow("unknown option `presenceTiming.ttl` (did you mean `presenceTiming.ttlMs`?)");
    expect(create({ metrics: { companyLabel: { maximum: 10 } } })).toThrow("unknown option `metrics.companyLabel.maximum`");
  });

  test("a renamed option is refused and pointed to its new name", () => {
    expect(create({ limits: { maxUserMessageBytes: 1024 } })).toThrow("unknown option `limits.maxUserMessageBytes` (did you mean `limits.maxMessageBytes`?)");
    expect(create({ topics: { maxPerConnection: 10 } })).toThrow("unknown option `topics.maxPerConnection` (did you mean `limits.maxSubscriptionsPerConnection`?)");
    expect(create({ history: { maxReplay: 10 } })).toThrow("unknown option `history` (did you mean `recovery`?)");
  });

  test("an option in the wrong group is pointed to its group", () => {
    expect(create({ maxPayloadBytes: 1024 })).toThrow("unknown option `maxPayloadBytes` (did you mean `limits.maxPayloadBytes`?)");
    expect(create({ topics: { maxDepth: 8 } })).toThrow("unknown option `topics.maxDepth` (did you mean `limits.maxDepth`?)");
  });

  test("an option like nothing known is named with the known options of its group, and several are named at once", () => {
    expect(create({ frobnicate: true })).toThrow(/unknown option `frobnicate`\. Known options: auth, authorize, .*metrics\./);
    expect(create({ recovery: { keep: 5 }, authExpiry: { warnBeforeMs: 1, grace: 2 } })).toThrow(
      /unknown options `recovery\.keep`, `authExpiry\.grace`\. Known `recovery` options: maxReplay, size, ttlMs, idleMs\. Known `authExpiry` options: warnBeforeMs, requireExpiry\./,
    );
  });

  test("jwtAuth options given as `auth` are checked too; an Authenticator's own members are its business", () => {
    const jwt = { secret: TEST_SECRET, algorithms: ["HS256"] };
    expect(() => createRealtimeEngine({ auth: { ...jwt, audiance: "erp" } as never })).toThrow("unknown option `auth.audiance` (did you mean `auth.audience`?)");
    expect(() => createRealtimeEngine({ auth: { ...jwt, claims: { user: "uid" } } as never })).toThrow("unknown option `auth.claims.user` (did you mean `auth.claims.userId`?)");
    const authenticator = Object.assign(testAuth(), { name: "sso" });
    expect(() => createRealtimeEngine({ auth: authenticator, logger: false })).not.toThrow();
  });

  test("a group that is not an object is refused with its name", () => {
    expect(create({ limits: 5 })).toThrow("`limits` must be an object; got number.");
    expect(create({ topics: ["project:{id}"] })).toThrow("`topics` must be an object; got an array.");
  });

  test("every documented option is accepted", async () => {
    const options: Required<RealtimeEngineOptions> = {
      auth: { secret: TEST_SECRET, algorithms: ["HS256"], issuer: "truss-tests", audience: "truss", clockToleranceSec: 0, claims: { userId: "sub", companyId: "companyId", roles: "roles", deviceId: "deviceId" } },
      authorize: () => true,
      topics: { patterns: ["project:{projectId}"] },
      presence: memoryPresenceStore(),
      scopedPresence: memoryScopedPresenceStore(),
      scopedPresenceLimits: { maxStateBytes: 512, maxStateDepth: 3, maxScopesPerConnection: 5, maxMembersListed: 50, updatesPerSecond: 5 },
      inbox: memoryInboxStore(),
      undelivered: { afterMs: 60_000, handler: () => {}, events: { "typing:started": false }, leaseMs: 20_000, timeoutMs: 5_000, maxAttempts: 3, backoffMs: 500, pollIntervalMs: 500, concurrency: 4 },
      documents: memoryDocumentStore(),
      streams: memoryStreamStore(),
      revocations: memoryRevocationStore(),
      revocationTiming: { ttlMs: 60_000, pollIntervalMs: 1000 },
      recovery: { maxReplay: 10, size: 10, ttlMs: 1000, idleMs: 5000 },
      resolver: fieldMerge(),
      adapter: undefined as never,
      limits: {
        allowedOrigins: ["https://erp.example.com"],
        maxPayloadBytes: 1024,
        eventsPerSecond: 10,
        userEventsPerSecond: 30,
        userBytesPerSecond: 16_384,
        maxDepth: 8,
        maxDocumentBytes: 4096,
        maxMessageBytes: 1024,
        maxBufferedBytes: 65_536,
        maxDevicesPerUser: 3,
        maxSocketsPerDevice: 4,
        maxSubscriptionsPerConnection: 10,
        authorizeTimeoutMs: 100,
      },
      presenceTiming: { ttlMs: 1000, heartbeatIntervalMs: 300, sweepIntervalMs: 500 },
      authExpiry: { warnBeforeMs: 1000, requireExpiry: false },
      events: defineEvents({ server: {}, client: {} }),
      namespace: "/",
      socketIo: { path: "/socket.io" },
      logger: false,
      nodeId: "node-1",
      metrics: { registry: new Registry(), companyLabel: { max: 5 } },
    };
    const { adapter: _adapter, ...withoutAdapter } = options;
    const engine = createRealtimeEngine(withoutAdapter);
    await engine.close();
  });
});

describe("stores without their methods", () => {
  test("a plain object as a store is refused at start-up, naming the store and each missing method", () => {
    expect(create({ inbox: {} })).toThrow(
      new TypeError("createRealtimeEngine: the inbox store (`inbox`) is missing append(), read(), ack(), cursor(), dropped(); InboxStore requires append, read, ack, cursor, dropped."),
    );
    const { list: _list, ...presence } = memoryPresenceStore();
    expect(create({ presence })).toThrow("the presence store (`presence`) is missing list()");
    expect(create({ documents: { ...memoryDocumentStore(), mutation: "yes" } })).toThrow("the documents store (`documents`) is missing mutation()");
    expect(create({ streams: "redis://localhost" })).toThrow("the streams store (`streams`) must be an object implementing StreamStore (append, read, trimmed); got string.");
    expect(create({ resolver: { name: "mine" } })).toThrow("`resolver` is missing resolve()");
    expect(create({ logger: { warn() {} } })).toThrow("`logger` is missing error()");
    expect(() => createRealtimeEngine({ auth: { authenticate: "jwt" } as never })).toThrow("`auth` is missing authenticate()");
  });

  test("a store written as a class, its methods on the prototype, is accepted and serves", async () => {
    const inner = memoryInboxStore();
    class LoggedInbox implements InboxStore {
      append(...args: Parameters<InboxStore["append"]>) {
        return inner.append(...args);
      }
      read(...args: Parameters<InboxStore["read"]>) {
        return inner.read(...args);
      }
      ack(...args: Parameters<InboxStore["ack"]>) {
        return inner.ack(...args);
      }
      cursor(...args: Parameters<InboxStore["cursor"]>) {
        return inner.cursor(...args);
      }
      dropped() {
        return inner.dropped();
      }
    }
    server = await startTestServer({ inbox: new LoggedInbox() });
    await server.engine.toUser("acme", "alice").emit("expense:approved", { id: "e1" });
    const socket = await connectAs(server.url, { userId: "alice", companyId: "acme" });
    expect(await request(socket, "presence:list", {})).toMatchObject({ ok: true });
    socket.close();
  });
});

describe("stores kept per node", () => {
  /** The warnings `createRealtimeEngine` logged. */
  const warningsOf = (options: Partial<RealtimeEngineOptions>) => {
    const warnings: Array<{ message: string; fields: unknown }> = [];
    const logger = { debug() {}, info() {}, error() {}, warn: (message: string, fields?: unknown) => void warnings.push({ message, fields }) };
    createRealtimeEngine({ auth: testAuth(), logger, ...options } as RealtimeEngineOptions);
    return warnings;
  };
  /** A store that is not one of the engine's own in-memory stores, as a shared store is. */
  const shared = <T extends object>(store: T): T => Object.create(store) as T;

  test("with an adapter, every store left in memory is named at creation, with what to do", () => {
    const warnings = warningsOf({ adapter: Adapter, inbox: shared(memoryInboxStore()) });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toMatch(/adapter is set.*in memory, each node its own: presence, documents, streams, revocations, scopedPresence\..*redisStores/s);
    expect(warnings[0]!.fields).toEqual({ stores: ["presence", "documents", "streams", "revocations", "scopedPresence"] });
  });

  test("with shared stores, or without an adapter, nothing is said", () => {
    const stores = {
      presence: shared(memoryPresenceStore()),
      scopedPresence: shared(memoryScopedPresenceStore()),
      inbox: shared(memoryInboxStore()),
      documents: shared(memoryDocumentStore()),
      streams: shared(memoryStreamStore()),
      revocations: shared(memoryRevocationStore()),
    };
    expect(warningsOf({ adapter: Adapter, ...stores })).toEqual([]);
    expect(warningsOf({})).toEqual([]);
  });
});
