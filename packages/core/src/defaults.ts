import { DEFAULT_DOCUMENT_HISTORY, DEFAULT_DOCUMENT_HISTORY_BYTES, DEFAULT_MAX_MUTATION_WRITERS, DEFAULT_MAX_MUTATIONS, DEFAULT_MUTATION_TTL_MS } from "./documents/store.js";
import {
  DEFAULT_AUTH_WARN_BEFORE_MS,
  DEFAULT_LIMITS,
  DEFAULT_MAX_REPLAY,
  DEFAULT_PRESENCE_TTL_MS,
  DEFAULT_REVOCATION_POLL_INTERVAL_MS,
} from "./engine/options.js";
import { DEFAULT_INBOX_MAX_CURSORS_PER_USER, DEFAULT_INBOX_MAX_LENGTH, DEFAULT_INBOX_TTL_MS } from "./inbox/store.js";
import { DEFAULT_COMPANY_LABEL_MAX } from "./kernel/metrics.js";
import { DEFAULT_MAX_REVOCATIONS } from "./revocations/memory.js";
import { DEFAULT_REVOCATION_TTL_MS } from "./revocations/store.js";
import { DEFAULT_STREAM_IDLE_MS, DEFAULT_STREAM_SIZE, DEFAULT_STREAM_TTL_MS } from "./streams/store.js";
import { presenceIntervals } from "./presence/service.js";
import { DEFAULT_SCOPED_PRESENCE_LIMITS } from "./scoped-presence/service.js";
import { DEFAULT_UNDELIVERED } from "./undelivered/options.js";

/**
 * Every default Truss applies, in one frozen object grouped as the options
 * are: `DEFAULTS.limits.maxPayloadBytes` is what `limits.maxPayloadBytes`
 * is when you leave it out. Durations are in ms, sizes in bytes.
 *
 * @example
 * const engine = createRealtimeEngine({ auth, limits: { maxPayloadBytes: 2 * DEFAULTS.limits.maxPayloadBytes } });
 */
export const DEFAULTS = frozen({
  /** `createRealtimeEngine`'s `limits`. */
  limits: {
    /** Largest client event, in bytes of its encoded packet: 64 KiB. */
    maxPayloadBytes: DEFAULT_LIMITS.maxPayloadBytes,
    /** Events one socket may send per second. */
    eventsPerSecond: DEFAULT_LIMITS.eventsPerSecond,
    /** Events one user may send per second over their sockets on one node: three times `eventsPerSecond`, whatever that is set to. */
    userEventsPerSecond: DEFAULT_LIMITS.eventsPerSecond * DEFAULT_LIMITS.userEventsPerSecondFactor,
    /** Bytes of events one user may send per second over their sockets on one node: sixteen times `maxPayloadBytes`, whatever that is set to (1 MiB). */
    userBytesPerSecond: DEFAULT_LIMITS.maxPayloadBytes * DEFAULT_LIMITS.userBytesPerSecondFactor,
    /** Deepest nesting of objects and arrays in a payload, a document or data sent to users. */
    maxDepth: DEFAULT_LIMITS.maxDepth,
    /** Largest document, in bytes of its JSON: 256 KiB. */
    maxDocumentBytes: DEFAULT_LIMITS.maxDocumentBytes,
    /** Largest `toUser`, `toCompany` or `toTopic` data, in bytes of its JSON: 64 KiB. */
    maxMessageBytes: DEFAULT_LIMITS.maxMessageBytes,
    /** Most bytes waiting to be written to one socket before it is disconnected as a slow consumer: 1 MiB. */
    maxBufferedBytes: DEFAULT_LIMITS.maxBufferedBytes,
    /** Most devices one user may have connected at once, across all nodes. */
    maxDevicesPerUser: DEFAULT_LIMITS.maxDevicesPerUser,
    /** Most sockets one device may have open to one node at once. */
    maxSocketsPerDevice: DEFAULT_LIMITS.maxSocketsPerDevice,
    /** Most subscriptions one socket may hold, topics and watched documents together. */
    maxSubscriptionsPerConnection: DEFAULT_LIMITS.maxSubscriptionsPerConnection,
    /** How long the `authorize` policy may take to answer, in ms: 5 s. */
    authorizeTimeoutMs: DEFAULT_LIMITS.authorizeTimeoutMs,
    /** How long one call to a store may take before it fails as `STORE_UNAVAILABLE`, in ms: 5 s (the in-memory stores are not timed). */
    storeTimeoutMs: DEFAULT_LIMITS.storeTimeoutMs,
    /** How long the authenticator may take to answer a handshake or a refresh, in ms: 5 s. */
    authenticateTimeoutMs: DEFAULT_LIMITS.authenticateTimeoutMs,
    /** How long an application event's schema and handler may take, in ms: 30 s. */
    handlerTimeoutMs: DEFAULT_LIMITS.handlerTimeoutMs,
  },
  /**
   * `createRealtimeEngine`'s `recovery`. `size`, `ttlMs` and `idleMs` are
   * also what every stream store (`memoryStreamStore`, `redisStreamStore`)
   * keeps when not told otherwise.
   */
  recovery: {
    /** Most missed messages of one stream a device may catch up on at once. */
    maxReplay: DEFAULT_MAX_REPLAY,
    /** Entries each stream keeps. */
    size: DEFAULT_STREAM_SIZE,
    /** How long an entry is kept, in ms: 10 minutes. */
    ttlMs: DEFAULT_STREAM_TTL_MS,
    /** How long a stream whose entries all expired is remembered, in ms: 1 hour. */
    idleMs: DEFAULT_STREAM_IDLE_MS,
  },
  /** `createRealtimeEngine`'s `presenceTiming`. */
  presenceTiming: {
    /** How long a device stays online without a heartbeat, in ms: 30 s. */
    ttlMs: DEFAULT_PRESENCE_TTL_MS,
    /** How often a node heartbeats its devices, in ms: a third of `ttlMs`, whatever that is set to (10 s). */
    heartbeatIntervalMs: presenceIntervals(DEFAULT_PRESENCE_TTL_MS).heartbeatIntervalMs,
    /** How often a node sweeps expired devices, in ms: half of `ttlMs`, whatever that is set to (15 s). */
    sweepIntervalMs: presenceIntervals(DEFAULT_PRESENCE_TTL_MS).sweepIntervalMs,
  },
  /** `createRealtimeEngine`'s `scopedPresenceLimits`: presence in topics and documents. */
  scopedPresenceLimits: {
    /** Largest state of one member, in bytes of JSON: 1 KiB. */
    maxStateBytes: DEFAULT_SCOPED_PRESENCE_LIMITS.maxStateBytes,
    /** Deepest nesting of objects and arrays in a state. */
    maxStateDepth: DEFAULT_SCOPED_PRESENCE_LIMITS.maxStateDepth,
    /** Most scopes one socket may be present in at once. */
    maxScopesPerConnection: DEFAULT_SCOPED_PRESENCE_LIMITS.maxScopesPerConnection,
    /** Most members one answer lists. */
    maxMembersListed: DEFAULT_SCOPED_PRESENCE_LIMITS.maxMembersListed,
    /** State changes of one socket in one scope that go out per second; the rest are coalesced. */
    updatesPerSecond: DEFAULT_SCOPED_PRESENCE_LIMITS.updatesPerSecond,
    /** How long a scope's changes are collected on a node before they go out as one batch, in ms. */
    batchWindowMs: DEFAULT_SCOPED_PRESENCE_LIMITS.batchWindowMs,
    /** Largest batch, in bytes of JSON: 64 KiB; a busier window goes out as several. */
    maxBatchBytes: DEFAULT_SCOPED_PRESENCE_LIMITS.maxBatchBytes,
  },
  /** `createRealtimeEngine`'s `revocationTiming`. */
  revocationTiming: {
    /** How long a revocation is kept, in ms: 24 hours. */
    ttlMs: DEFAULT_REVOCATION_TTL_MS,
    /** How often each node reads the revocations it may have missed, in ms: 5 s. */
    pollIntervalMs: DEFAULT_REVOCATION_POLL_INTERVAL_MS,
  },
  /** `createRealtimeEngine`'s `authExpiry`. */
  authExpiry: {
    /** How long before a token expires `auth:expiring` is sent, in ms: 60 s. */
    warnBeforeMs: DEFAULT_AUTH_WARN_BEFORE_MS,
    /** Whether tokens without an `exp` claim are refused. */
    requireExpiry: false,
  },
  /** `createRealtimeEngine`'s `metrics`. */
  metrics: {
    /** Distinct companies labelled by one node when `companyLabel` is given without `max`. */
    companyLabel: { max: DEFAULT_COMPANY_LABEL_MAX },
  },
  /** `createRealtimeEngine`'s `undelivered` (`afterMs` and `handler` have no default). */
  undelivered: {
    /** How long a claimed call is left to the node that claimed it, in ms: 30 s. */
    leaseMs: DEFAULT_UNDELIVERED.leaseMs,
    /** How long one handler call may take, in ms: 10 s. */
    timeoutMs: DEFAULT_UNDELIVERED.timeoutMs,
    /** Calls of one message before it is given up. */
    maxAttempts: DEFAULT_UNDELIVERED.maxAttempts,
    /** Wait before the first retry, in ms, doubled for each further one up to a minute: 1 s. */
    backoffMs: DEFAULT_UNDELIVERED.backoffMs,
    /** How often each node looks for due calls, in ms: 1 s. */
    pollIntervalMs: DEFAULT_UNDELIVERED.pollIntervalMs,
    /** Handler calls one node runs at once. */
    concurrency: DEFAULT_UNDELIVERED.concurrency,
  },
  /** Every inbox store's options (`InboxOptions`). */
  inbox: {
    /** How long a message is kept, in ms: 24 hours. */
    ttlMs: DEFAULT_INBOX_TTL_MS,
    /** Messages kept per user; the oldest go first. */
    maxLength: DEFAULT_INBOX_MAX_LENGTH,
    /** Device cursors kept per user; the one moved longest ago goes first. */
    maxCursorsPerUser: DEFAULT_INBOX_MAX_CURSORS_PER_USER,
  },
  /** Every document store's options (`DocumentStoreOptions`). */
  documents: {
    /** Versions kept per document. */
    maxHistory: DEFAULT_DOCUMENT_HISTORY,
    /** Bytes of versions kept per document: 4 MiB. */
    maxHistoryBytes: DEFAULT_DOCUMENT_HISTORY_BYTES,
    /** Mutation ids remembered per writer of a document. */
    maxMutations: DEFAULT_MAX_MUTATIONS,
    /** Writers whose mutation ids a document keeps. */
    maxMutationWriters: DEFAULT_MAX_MUTATION_WRITERS,
    /** How long a mutation id is remembered, in ms: 7 days. */
    mutationTtlMs: DEFAULT_MUTATION_TTL_MS,
  },
  /** `memoryRevocationStore`'s options. */
  revocations: {
    /** Most revocations kept; past it the oldest go first. */
    maxRecords: DEFAULT_MAX_REVOCATIONS,
  },
} as const);

/** Freezes `value` and every object in it, so no caller can change a default for everyone. */
function frozen<T extends object>(value: T): T {
  for (const inner of Object.values(value)) if (typeof inner === "object" && inner !== null) frozen(inner);
  return Object.freeze(value);
}
