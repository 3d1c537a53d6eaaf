import type {
  DocumentStore,
  DocumentStoreOptions,
  InboxOptions,
  InboxStore,
  PresenceStore,
  RevocationStore,
  ScopedPresenceStore,
  StreamStore,
} from "@truss/core";
import { redisDocumentStore } from "./documents.js";
import { redisInboxStore } from "./inbox.js";
import { DEFAULT_PREFIX } from "./keys.js";
import { redisPresenceStore } from "./presence.js";
import { redisRevocationStore } from "./revocations.js";
import { redisScopedPresenceStore } from "./scoped-presence.js";
import { redisStreamStore, type RedisStreamStoreOptions } from "./streams.js";
import type { RedisClient } from "./script.js";

/** Options of {@link redisStores}. */
export interface RedisStoresOptions {
  /** Prefix of every key, so several apps can share one Redis. Default `"truss"`. */
  prefix?: string;
  /**
   * How long a company's presence keys outlive its latest connect or
   * heartbeat, in ms (`RedisPresenceStoreOptions.keyTtlMs`). Device TTLs
   * themselves come from the engine's heartbeat settings. Default one hour.
   */
  presenceKeyTtlMs?: number;
  /** Inbox TTL and length cap. */
  inbox?: InboxOptions;
  /** How many versions, and how many bytes of them, each document's history keeps. */
  documents?: DocumentStoreOptions;
  /** How many entries, for how long, each broadcast stream keeps, and how long an idle stream is remembered. */
  streams?: Omit<RedisStreamStoreOptions, "prefix" | "redis">;
}

/** The stores, ready for `createRealtimeEngine({ ...stores })`. */
export interface RedisStores {
  /** Multi-device presence with TTL heartbeats. */
  presence: PresenceStore;
  /** Presence in topics and documents, with each member's state. */
  scopedPresence: ScopedPresenceStore;
  /** Per-user durable message log. */
  inbox: InboxStore;
  /** Versioned documents with compare-and-set. */
  documents: DocumentStore;
  /** Bounded, offset-numbered history of company and topic broadcasts. */
  streams: StreamStore;
  /** Revocations every node applies, also one cut off from the adapter when they were made. */
  revocations: RevocationStore;
}

/**
 * Presence (company and scoped), inbox, document, stream and revocation stores on one ioredis client, with one key
 * prefix. Every engine node that uses the same Redis and prefix shares them.
 *
 * @example
 * const redis = new Redis(process.env.REDIS_URL, { enableOfflineQueue: false });
 * const engine = createRealtimeEngine({ auth, ...redisStores(redis, { inbox: { maxLength: 500 } }) });
 */
export function redisStores(redis: RedisClient, options: RedisStoresOptions = {}): RedisStores {
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  // Removed in 0.x; refused rather than ignored, so the keys do not silently fall back to the default TTL.
  if ("presenceTtl" in options) throw new TypeError("redisStores: `presenceTtl` is now `presenceKeyTtlMs` (the same TTL, in ms).");
  const keyTtlMs = options.presenceKeyTtlMs;
  return {
    presence: redisPresenceStore({ redis, prefix, ...(keyTtlMs === undefined ? {} : { keyTtlMs }) }),
    scopedPresence: redisScopedPresenceStore({ redis, prefix, ...(keyTtlMs === undefined ? {} : { keyTtlMs }) }),
    inbox: redisInboxStore({ redis, prefix, ...options.inbox }),
    documents: redisDocumentStore({ redis, prefix, ...options.documents }),
    streams: redisStreamStore({ ...options.streams, redis, prefix }),
    revocations: redisRevocationStore({ redis, prefix }),
  };
}
