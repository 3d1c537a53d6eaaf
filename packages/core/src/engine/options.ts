import { hostname } from "node:os";
import type { ServerOptions } from "socket.io";
import type { Authenticator } from "../auth/authenticator.js";
import { jwtAuth, type JwtAuthOptions } from "../auth/jwt.js";
import { memoryDocumentStore } from "../documents/memory.js";
import type { ConflictResolver } from "../documents/conflict-resolver.js";
import { fieldMerge } from "../documents/resolvers.js";
import type { DocumentStore } from "../documents/store.js";
import { memoryInboxStore } from "../inbox/memory.js";
import type { InboxStore } from "../inbox/store.js";
import { memoryPresenceStore } from "../presence/memory.js";
import type { PresenceStore } from "../presence/store.js";
import { presenceIntervals, type PresenceTimingOptions } from "../presence/service.js";
import { memoryScopedPresenceStore } from "../scoped-presence/memory.js";
import { DEFAULT_SCOPED_PRESENCE_LIMITS, type ScopedPresenceLimits } from "../scoped-presence/service.js";
import type { ScopedPresenceStore } from "../scoped-presence/store.js";
import type { EventCatalog } from "../kernel/events.js";
import type { MetricsOptions } from "../kernel/metrics.js";
import { memoryStreamStore } from "../streams/memory.js";
import { memoryRevocationStore } from "../revocations/memory.js";
import { DEFAULT_REVOCATION_TTL_MS, type RevocationStore } from "../revocations/store.js";
import type { StreamStore } from "../streams/store.js";
import { DEFAULT_AUTHORIZE_TIMEOUT_MS, type AuthorizePolicy } from "../policy/policy.js";
import { consoleLogger, guardedLogger, silentLogger, type Logger } from "../kernel/logger.js";
import { DEFAULT_MAX_TOPICS_PER_CONNECTION, TopicPatterns, type TopicOptions } from "../topics/patterns.js";
import { resolveUndeliveredOptions, type ResolvedUndeliveredOptions, type UndeliveredOptions } from "../undelivered/options.js";

/** Protective limits applied to every connection. */
export interface LimitOptions {
  /**
   * Origins allowed to open a connection (`https://erp.example.com`), checked
   * for the polling and the WebSocket handshake alike. Requests without an
   * Origin header (servers, native apps) are allowed. Default: any origin.
   */
  allowedOrigins?: readonly string[];
  /**
   * Largest client event, in bytes of its encoded packet. A larger event is
   * refused with `PAYLOAD_TOO_LARGE` and the connection stays up; anything
   * past four times this (at least 1 MiB) closes the connection before it
   * is buffered. Default 64 KiB.
   */
  maxPayloadBytes?: number;
  /**
   * Events one socket may send per second (a token bucket of that size).
   * Past it the event is refused with `RATE_LIMITED`.
   *
   * @default 50
   */
  eventsPerSecond?: number;
  /**
   * Events one user may send per second over all their sockets on this node
   * together, so that opening more sockets (tabs, devices) does not multiply
   * {@link eventsPerSecond}. Past it the event is refused with
   * `RATE_LIMITED`. Each node keeps its own count.
   *
   * @default three times `eventsPerSecond` (150)
   */
  userEventsPerSecond?: number;
  /**
   * Bytes of client events one user may send per second over all their
   * sockets on this node together, counted as the packets arrive. It bounds
   * how fast one user can fill memory or a store (sixteen 64 KiB documents a
   * second at the default, where the event budget alone would let 150
   * through). Past it the event is refused with `RATE_LIMITED`. The budget
   * always holds at least one event of `maxPayloadBytes`. Each node keeps
   * its own count.
   *
   * @default sixteen times `maxPayloadBytes` (1 MiB)
   */
  userBytesPerSecond?: number;
  /**
   * Deepest nesting of objects and arrays in any client event's payload, in a
   * document and in `toUser` data. Deeper values are refused with
   * `INVALID_PAYLOAD` before any handler or store sees them. Default 64.
   */
  maxDepth?: number;
  /**
   * Largest document, in bytes of its JSON after an update or rollback is
   * applied. A larger result is refused with `DOCUMENT_TOO_LARGE` and nothing
   * is stored. Default 256 KiB.
   */
  maxDocumentBytes?: number;
  /**
   * Largest data the server sends to users, in bytes of JSON: `toUser` data
   * and `toCompany`/`toTopic` broadcasts alike. Larger data is refused with
   * `PAYLOAD_TOO_LARGE` (data that is not JSON, a BigInt or a cycle, with
   * `INVALID_PAYLOAD`) before it is stored or sent.
   *
   * @default 64 KiB
   */
  maxMessageBytes?: number;
  /**
   * Most bytes waiting to be written to one socket (a client that stopped
   * reading). Past this the socket is sent `SLOW_CONSUMER` and disconnected,
   * so a stalled reader cannot grow the server's memory. Also the most bytes
   * of live inbox messages one socket holds while its inbox cannot be read
   * (the store down): past it the session is ended with `STORE_UNAVAILABLE`,
   * and the next one replays them from the store. Default 1 MiB.
   */
  maxBufferedBytes?: number;
  /**
   * Most devices one user may have connected at once, across all nodes. A
   * further device is refused with `TOO_MANY_DEVICES` at the handshake; more
   * sockets of a device already online are allowed, up to
   * {@link maxSocketsPerDevice}. Default 20.
   */
  maxDevicesPerUser?: number;
  /**
   * Most sockets one device (the same company, user and `deviceId`) may have
   * open to one node at once. A further socket is refused with
   * `TOO_MANY_CONNECTIONS` at the handshake, and `@truss/client` retries it
   * with backoff. Every tab of a browser profile shares the `deviceId` kept
   * in `localStorage`, so the default leaves room for a heavy user's tabs;
   * past it is almost always a script. Each socket may hold up to
   * `maxBufferedBytes` of unread output, so this also bounds what one device
   * can make a node buffer. Each node keeps its own count.
   *
   * @default 16
   */
  maxSocketsPerDevice?: number;
  /**
   * Most subscriptions one socket may hold, topics (`topic:subscribe`) and
   * watched documents (`document:watch`) together. A further one is refused
   * with `TOO_MANY_SUBSCRIPTIONS`; unsubscribing or unwatching makes room.
   *
   * @default 100
   */
  maxSubscriptionsPerConnection?: number;
  /**
   * How long the `authorize` policy may take to answer one request, in ms;
   * past it the request is refused with `INTERNAL_ERROR` (undecided; clients
   * try it again a few times). Default 5 s.
   */
  authorizeTimeoutMs?: number;
  /**
   * How long the authenticator may take to answer one handshake or
   * `auth:refresh` (a custom `authenticate`, or an async JWT claims mapper), in
   * ms; past it the handshake is refused with `INTERNAL_ERROR` (which clients
   * retry) and a warning is logged. Without it, an authenticator that never
   * answers (an identity service with no timeout) would hold each handshake
   * until Socket.IO's `connectTimeout`, and its socket after that.
   *
   * @default 5000
   */
  authenticateTimeoutMs?: number;
  /**
   * How long an application event (`engine.handle`) may take, in ms, its
   * schema's validation included; past it the client is answered
   * `HANDLER_ERROR` ("it may still finish on the server": its late answer is
   * dropped), the handler's `signal` is aborted, and a warning is logged.
   *
   * @default 30000
   */
  handlerTimeoutMs?: number;
  /**
   * How long one store call may take, in ms. Past it the call fails as a
   * dropped connection does: the request (or the server API call) is answered
   * `STORE_UNAVAILABLE`, "not confirmed" (a write may still land, as with any
   * store failure), counted in `truss_store_errors_total`; a best-effort
   * presence call is skipped. Without it, a store that never answers (a
   * PostgreSQL pool with every connection taken and no acquire timeout, an
   * ioredis command queued while the server is away) would hold each request
   * and each handshake for good. The built-in in-memory stores answer in
   * process and are not timed.
   *
   * @default 5000
   */
  storeTimeoutMs?: number;
}

/**
 * How devices that were away catch up on company and topic broadcasts, the
 * `recovery` option (what Socket.IO's `connectionStateRecovery` is for one
 * server). `maxReplay` holds whatever the stream store. `size`, `ttlMs` and
 * `idleMs` size only the default in-memory stream store: a store passed as
 * `streams` takes its own (`redisStreamStore({ size, ttlMs, idleMs })`) and
 * these three are not read.
 */
export interface RecoveryOptions {
  /**
   * Most missed messages of one stream a device may catch up on; past it the
   * device gets a `TOO_MANY_MISSED` resync instead.
   *
   * @default 1000
   */
  maxReplay?: number;
  /**
   * Entries each stream keeps in the default in-memory stream store; the
   * oldest go first, and a device that missed them gets `HISTORY_TRIMMED`.
   *
   * @default 1000
   */
  size?: number;
  /**
   * How long the default in-memory stream store keeps an entry, in ms: how
   * long a device may be away and still catch up (past it,
   * `HISTORY_EXPIRED`).
   *
   * @default 600000 (10 minutes)
   */
  ttlMs?: number;
  /**
   * How long the default in-memory stream store remembers a stream whose
   * entries all expired, in ms. Until then a device coming back to a quiet
   * stream keeps its position; after it the stream starts a new epoch and
   * the device resyncs.
   *
   * @default 3600000 (1 hour)
   */
  idleMs?: number;
}

/** The default `recovery.maxReplay`. */
export const DEFAULT_MAX_REPLAY = 1000;

/** How long revocations stay in force and how soon a node that missed one applies it, the `revocationTiming` option. */
export interface RevocationTimingOptions {
  /**
   * How long a revocation (`disconnectUser`, `unsubscribeUser`) is kept, in
   * ms: a token issued before it is refused for this long, so make it at
   * least the lifetime of your longest-lived token.
   *
   * @default 24 hours (`DEFAULTS.revocationTiming.ttlMs`)
   */
  ttlMs?: number;
  /**
   * How often each node reads the revocations stored since it last looked,
   * in ms, and applies those it missed (its adapter was cut off from Redis
   * when they were made). A node also reads at once when its adapter
   * resubscribes. This is the longest a missed revocation waits.
   *
   * @default 5 seconds (`DEFAULTS.revocationTiming.pollIntervalMs`)
   */
  pollIntervalMs?: number;
}

/** The default `revocationTiming.pollIntervalMs`: 5 seconds. */
export const DEFAULT_REVOCATION_POLL_INTERVAL_MS = 5_000;

/** Token-expiry behaviour on live connections. */
export interface AuthExpiryOptions {
  /** How long before expiry `auth:expiring` is sent, in ms. Default 60 s. */
  warnBeforeMs?: number;
  /**
   * Refuse tokens without an `exp` claim, at the handshake and on
   * `auth:refresh`, with `AUTH_MISSING_CLAIMS`. Default `false`. Either way a
   * connection whose token had an `exp` cannot be refreshed with one that has
   * none, which would make the session immortal.
   */
  requireExpiry?: boolean;
}

/** The stores the engine runs on: each defaults to its in-memory store. */
export interface EngineStores {
  presence: PresenceStore;
  inbox: InboxStore;
  documents: DocumentStore;
  streams: StreamStore;
  revocations: RevocationStore;
}

/** Everything `createRealtimeEngine` accepts. Only `auth` is required. */
export interface RealtimeEngineOptions<TCatalog extends EventCatalog = EventCatalog, TTopic extends string = string> {
  /**
   * Proves who connects: the application's own {@link Authenticator}, or
   * `jwtAuth` options (`{ secret, algorithms: ["HS256"], issuer }`), which the
   * engine turns into `jwtAuth(options)`.
   */
  auth: Authenticator | JwtAuthOptions;
  /**
   * The authorization policy inside a tenant, run before every socket
   * operation on a resource: `topic:subscribe`, `document:read|write|rollback`
   * and application events. Only `true` allows; `false` or a refusal answers
   * `FORBIDDEN` (or the refusal's `NOT_FOUND`); a throw, a rejection or no
   * answer within `limits.authorizeTimeoutMs` refuses with `INTERNAL_ERROR`
   * (the policy could not decide; clients try again a few times).
   * Without it documents and events stay open to the whole company and every
   * topic subscription is refused.
   */
  authorize?(...args: Parameters<AuthorizePolicy<TTopic>>): ReturnType<AuthorizePolicy<TTopic>>;
  /** Topic patterns clients may subscribe to. */
  topics?: TopicOptions<TTopic>;
  /** Presence store; default in-memory (one process). */
  presence?: PresenceStore;
  /**
   * Where members of a topic's or document's presence (with their state)
   * are kept; default in-memory (one process). Shares `presenceTiming`.
   */
  scopedPresence?: ScopedPresenceStore;
  /** Bounds of presence in topics and documents: state size and depth, scopes per socket, members per answer, updates per second. */
  scopedPresenceLimits?: ScopedPresenceLimits;
  /** User inbox; default in-memory (one process). */
  inbox?: InboxStore;
  /**
   * Calls `handler` for each `toUser` message no device of the user
   * acknowledged within `afterMs` of being stored, once across nodes, so
   * the app can send a push notification, an e-mail or an SMS. Needs an
   * inbox store with undelivered calls (memory, Redis, PostgreSQL). See
   * docs/undelivered-messages.md.
   */
  undelivered?: UndeliveredOptions;
  /** Document store; default in-memory (one process). */
  documents?: DocumentStore;
  /**
   * Where company and topic broadcasts are kept so devices that were away can
   * catch up; default in-memory (one process), sized by `recovery`.
   */
  streams?: StreamStore;
  /**
   * Where revocations are kept so every node applies them, even one cut off
   * from the adapter when they were made; default in-memory (one process).
   */
  revocations?: RevocationStore;
  /** How long revocations stay in force and how often each node reads the ones it missed. */
  revocationTiming?: RevocationTimingOptions;
  /** How much a device that was away may catch up on, and how much broadcast history the default stream store keeps. */
  recovery?: RecoveryOptions;
  /** Decides stale-base document updates. Default `fieldMerge()`. */
  resolver?: ConflictResolver;
  /** A Socket.IO adapter constructor (e.g. `redisAdapter(pub, sub)` from `@truss/redis`) for several nodes. */
  adapter?: ServerOptions["adapter"];
  /** Protective limits. */
  limits?: LimitOptions;
  /** Presence timing. */
  presenceTiming?: PresenceTimingOptions;
  /** Token-expiry behaviour. */
  authExpiry?: AuthExpiryOptions;
  /** The application's typed, schema-validated events. */
  events?: TCatalog;
  /** The Socket.IO namespace Truss serves. Default `/`. */
  namespace?: string;
  /** Extra Socket.IO server options for `attach` (path, transports, cors…). */
  socketIo?: Partial<ServerOptions>;
  /**
   * Where warnings and errors go. Default `console`; `false` silences them.
   * A logger that throws never takes the engine down: what it was asked to
   * log is dropped, and Node.js is warned once (`TrussLoggerWarning`).
   */
  logger?: Logger | false;
  /** This node's name in logs and health. Default `<hostname>:<pid>`. */
  nodeId?: string;
  /**
   * Where the engine's Prometheus metrics go (`registry`: the application's
   * prom-client registry, for one `/metrics`) and opt-in per-company labels
   * with a cap (`companyLabel: { max }`). Default: a registry of the
   * engine's own, without company labels. See `docs/operations.md`.
   */
  metrics?: MetricsOptions;
}

/** Default limits. */
export const DEFAULT_LIMITS = {
  maxPayloadBytes: 64 * 1024,
  eventsPerSecond: 50,
  /** Times `eventsPerSecond` when `userEventsPerSecond` is not set. */
  userEventsPerSecondFactor: 3,
  /** Times `maxPayloadBytes` when `userBytesPerSecond` is not set. */
  userBytesPerSecondFactor: 16,
  maxDepth: 64,
  maxDocumentBytes: 256 * 1024,
  maxMessageBytes: 64 * 1024,
  maxBufferedBytes: 1024 * 1024,
  maxDevicesPerUser: 20,
  maxSocketsPerDevice: 16,
  maxSubscriptionsPerConnection: DEFAULT_MAX_TOPICS_PER_CONNECTION,
  authorizeTimeoutMs: DEFAULT_AUTHORIZE_TIMEOUT_MS,
  storeTimeoutMs: 5_000,
  authenticateTimeoutMs: 5_000,
  handlerTimeoutMs: 30_000,
} as const;

/** Default presence TTL. */
export const DEFAULT_PRESENCE_TTL_MS = 30_000;
/** Default warning lead before a token expires. */
export const DEFAULT_AUTH_WARN_BEFORE_MS = 60_000;

/** Every option with its default applied and checked: what the engine's parts are built from. */
export interface ResolvedOptions {
  authenticator: Authenticator;
  stores: EngineStores;
  resolver: ConflictResolver;
  logger: Logger;
  nodeId: string;
  namespace: string;
  limits: Required<Omit<LimitOptions, "allowedOrigins">> & {
    /** `null`: any origin. */
    allowedOrigins: ReadonlySet<string> | null;
  };
  presenceTiming: Required<PresenceTimingOptions>;
  scopedPresence: { store: ScopedPresenceStore; limits: Required<ScopedPresenceLimits> };
  authExpiry: Required<AuthExpiryOptions>;
  revocationTiming: Required<RevocationTimingOptions>;
  authorize: AuthorizePolicy | undefined;
  topics: { patterns: TopicPatterns };
  maxReplay: number;
  undelivered: ResolvedUndeliveredOptions | null;
}

/**
 * Applies the defaults and checks every number once, so a misconfiguration
 * fails at `createRealtimeEngine` with the option's name, not later.
 *
 * @throws TypeError when `auth` is missing or a number is not positive.
 * Unknown options and stores without their methods are refused before
 * this, by `assertKnownOptions`.
 */
export function resolveOptions(options: RealtimeEngineOptions<EventCatalog, string>): ResolvedOptions {
  if (!options?.auth) {
    throw new TypeError('createRealtimeEngine needs `auth`: an Authenticator, or jwtAuth options such as { secret, algorithms: ["HS256"] }.');
  }
  const limits = options.limits ?? {};
  const recovery = options.recovery ?? {};
  const maxPayloadBytes = positive(limits.maxPayloadBytes, DEFAULT_LIMITS.maxPayloadBytes, "limits.maxPayloadBytes");
  const eventsPerSecond = positive(limits.eventsPerSecond, DEFAULT_LIMITS.eventsPerSecond, "limits.eventsPerSecond");
  const ttlMs = positive(options.presenceTiming?.ttlMs, DEFAULT_PRESENCE_TTL_MS, "presenceTiming.ttlMs");
  const inbox = options.inbox ?? memoryInboxStore();
  return {
    authenticator: "authenticate" in options.auth ? options.auth : jwtAuth(options.auth),
    stores: {
      presence: options.presence ?? memoryPresenceStore(),
      inbox,
      documents: options.documents ?? memoryDocumentStore(),
      streams:
        options.streams ??
        memoryStreamStore({
          ...(recovery.size !== undefined ? { size: positive(recovery.size, 0, "recovery.size") } : {}),
          ...(recovery.ttlMs !== undefined ? { ttlMs: positive(recovery.ttlMs, 0, "recovery.ttlMs") } : {}),
          ...(recovery.idleMs !== undefined ? { idleMs: positive(recovery.idleMs, 0, "recovery.idleMs") } : {}),
        }),
      revocations: options.revocations ?? memoryRevocationStore(),
    },
    resolver: options.resolver ?? fieldMerge(),
    logger: options.logger === false ? silentLogger : guardedLogger(options.logger ?? consoleLogger),
    nodeId: options.nodeId ?? `${hostname()}:${process.pid}`,
    namespace: options.namespace ?? "/",
    limits: {
      allowedOrigins: limits.allowedOrigins ? new Set(limits.allowedOrigins) : null,
      maxPayloadBytes,
      eventsPerSecond,
      userEventsPerSecond: positive(limits.userEventsPerSecond, eventsPerSecond * DEFAULT_LIMITS.userEventsPerSecondFactor, "limits.userEventsPerSecond"),
      userBytesPerSecond: positive(limits.userBytesPerSecond, maxPayloadBytes * DEFAULT_LIMITS.userBytesPerSecondFactor, "limits.userBytesPerSecond"),
      maxDepth: positive(limits.maxDepth, DEFAULT_LIMITS.maxDepth, "limits.maxDepth"),
      maxDocumentBytes: positive(limits.maxDocumentBytes, DEFAULT_LIMITS.maxDocumentBytes, "limits.maxDocumentBytes"),
      maxMessageBytes: positive(limits.maxMessageBytes, DEFAULT_LIMITS.maxMessageBytes, "limits.maxMessageBytes"),
      maxBufferedBytes: positive(limits.maxBufferedBytes, DEFAULT_LIMITS.maxBufferedBytes, "limits.maxBufferedBytes"),
      maxDevicesPerUser: positive(limits.maxDevicesPerUser, DEFAULT_LIMITS.maxDevicesPerUser, "limits.maxDevicesPerUser"),
      maxSocketsPerDevice: positive(limits.maxSocketsPerDevice, DEFAULT_LIMITS.maxSocketsPerDevice, "limits.maxSocketsPerDevice"),
      maxSubscriptionsPerConnection: positive(
        limits.maxSubscriptionsPerConnection,
        DEFAULT_LIMITS.maxSubscriptionsPerConnection,
        "limits.maxSubscriptionsPerConnection",
      ),
      authorizeTimeoutMs: positive(limits.authorizeTimeoutMs, DEFAULT_LIMITS.authorizeTimeoutMs, "limits.authorizeTimeoutMs"),
      storeTimeoutMs: positive(limits.storeTimeoutMs, DEFAULT_LIMITS.storeTimeoutMs, "limits.storeTimeoutMs"),
      authenticateTimeoutMs: positive(limits.authenticateTimeoutMs, DEFAULT_LIMITS.authenticateTimeoutMs, "limits.authenticateTimeoutMs"),
      handlerTimeoutMs: positive(limits.handlerTimeoutMs, DEFAULT_LIMITS.handlerTimeoutMs, "limits.handlerTimeoutMs"),
    },
    presenceTiming: {
      ttlMs,
      heartbeatIntervalMs: options.presenceTiming?.heartbeatIntervalMs ?? presenceIntervals(ttlMs).heartbeatIntervalMs,
      sweepIntervalMs: options.presenceTiming?.sweepIntervalMs ?? presenceIntervals(ttlMs).sweepIntervalMs,
    },
    scopedPresence: {
      store: options.scopedPresence ?? memoryScopedPresenceStore(),
      limits: scopedPresenceLimits(options.scopedPresenceLimits ?? {}),
    },
    revocationTiming: {
      ttlMs: positive(options.revocationTiming?.ttlMs, DEFAULT_REVOCATION_TTL_MS, "revocationTiming.ttlMs"),
      pollIntervalMs: positive(options.revocationTiming?.pollIntervalMs, DEFAULT_REVOCATION_POLL_INTERVAL_MS, "revocationTiming.pollIntervalMs"),
    },
    authExpiry: {
      warnBeforeMs: options.authExpiry?.warnBeforeMs ?? DEFAULT_AUTH_WARN_BEFORE_MS,
      requireExpiry: options.authExpiry?.requireExpiry === true,
    },
    authorize: authorizePolicy(options.authorize),
    maxReplay: positive(recovery.maxReplay, DEFAULT_MAX_REPLAY, "recovery.maxReplay"),
    topics: { patterns: new TopicPatterns(options.topics?.patterns) },
    undelivered: resolveUndeliveredOptions(options.undelivered, inbox),
  };
}

function scopedPresenceLimits(limits: ScopedPresenceLimits): Required<ScopedPresenceLimits> {
  const resolved = { ...DEFAULT_SCOPED_PRESENCE_LIMITS } as Required<ScopedPresenceLimits>;
  for (const name of Object.keys(DEFAULT_SCOPED_PRESENCE_LIMITS) as Array<keyof ScopedPresenceLimits>) {
    resolved[name] = positive(limits[name], DEFAULT_SCOPED_PRESENCE_LIMITS[name], `scopedPresenceLimits.${name}`);
  }
  return resolved;
}

function authorizePolicy(policy: unknown): AuthorizePolicy | undefined {
  if (policy === undefined) return undefined;
  if (typeof policy !== "function") throw new TypeError("`authorize` must be a function (principal, request) => boolean | refusal, or a promise of one.");
  return policy as AuthorizePolicy;
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!(typeof value === "number" && value > 0)) throw new TypeError(`${name} must be a positive number; got ${String(value)}.`);
  return value;
}
