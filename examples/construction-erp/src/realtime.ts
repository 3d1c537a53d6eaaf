/**
 * The ERP's Truss engine: its authenticator, policy, topics, event catalog
 * and stores. Documents stay in the database of record (the SQLite file, or
 * PostgreSQL, which keeps inboxes and broadcast streams too). With
 * `REDIS_URL` set, presence, revocations and the broadcasts themselves (and
 * inboxes and streams, unless PostgreSQL holds them) go through Redis so
 * several server processes can share them.
 *
 * @module
 */
import { createRealtimeEngine, type Authenticator, type DocumentStore, type InboxStore, type RealtimeEngine, type RealtimeEngineOptions, type StreamStore } from "@truss/core";
import { redisAdapter, redisStores } from "@truss/redis";
import { Redis } from "ioredis";
import type { AsyncErpAccess, ErpAccess } from "./access.js";
import { catalog, type ErpCatalog } from "./catalog.js";
import { TOPIC_PATTERNS, type ErpTopicPattern } from "./topics.js";

/** Engine options the ERP leaves to its caller. */
export type ErpEngineOptions = Partial<Omit<RealtimeEngineOptions<ErpCatalog, ErpTopicPattern>, "auth" | "authorize" | "topics" | "events" | "documents">>;

/** What {@link createErpRealtime} needs. */
export interface ErpRealtimeOptions {
  /** Verifies a socket's token and that its user is still a member (`memberAuthenticator`). */
  authenticator: Authenticator;
  /** The policy, bound to the database; the REST routes ask the same one. */
  access: ErpAccess | AsyncErpAccess;
  /** The document store on the database of record (SQLite or PostgreSQL). */
  documents: DocumentStore;
  /** Inbox and stream stores on the database of record (PostgreSQL); they take precedence over Redis's. */
  durable?: { inbox: InboxStore; streams: StreamStore } | undefined;
  /** A Redis URL for presence, inbox and the Socket.IO adapter; in-memory when absent. */
  redisUrl?: string | undefined;
  /** Further engine options (presence timing, limits, logger). */
  engine?: ErpEngineOptions | undefined;
}

/** The engine and what must be closed after it. */
export interface ErpRealtime {
  engine: RealtimeEngine<ErpCatalog>;
  /** Where presence and inboxes live, for the start banner. */
  storage: "memory" | "redis";
  /** Disconnects Redis; call after the engine has closed. */
  disconnect(): Promise<void>;
}

/** How long start-up waits for Redis before giving up with a clear error. */
const REDIS_CONNECT_TIMEOUT_MS = 5000;

/**
 * Builds the engine with the ERP's catalog, policy and topics. Who has a
 * site report or a project open is the engine's scoped presence, which the
 * same policy guards (`presence:join`, `presence:read`).
 *
 * @throws Error when `redisUrl` is set and Redis cannot be reached.
 */
export async function createErpRealtime(options: ErpRealtimeOptions): Promise<ErpRealtime> {
  const { access } = options;
  const base: RealtimeEngineOptions<ErpCatalog, ErpTopicPattern> = {
    ...options.engine,
    auth: options.authenticator,
    authorize: access.authorize,
    topics: { patterns: TOPIC_PATTERNS },
    events: catalog,
    documents: options.documents,
  };
  let storage: ErpRealtime["storage"] = "memory";
  let clients: Redis[] = [];
  if (options.redisUrl) {
    clients = await connectRedis(options.redisUrl);
    const [store, pub, sub] = clients as [Redis, Redis, Redis];
    // Documents stay in SQLite; everything else the nodes must share goes to Redis: a stream kept in each
    // node's memory would number its broadcasts apart from the others', and a revocation would reach one node.
    const { presence, scopedPresence, inbox, streams, revocations } = redisStores(store, { prefix: "truss:construction-erp" });
    Object.assign(base, { presence, scopedPresence, inbox, streams, revocations, adapter: redisAdapter(pub, sub) });
    storage = "redis";
  }
  // Inboxes and streams in PostgreSQL, beside the data they announce; presence and the adapter stay in memory or Redis.
  if (options.durable) Object.assign(base, { inbox: options.durable.inbox, streams: options.durable.streams });
  const engine = createRealtimeEngine<ErpCatalog, ErpTopicPattern>(base);
  return {
    engine,
    storage,
    async disconnect() {
      await Promise.allSettled(clients.map((client) => client.quit()));
    },
  };
}

/**
 * Opens the store connection and the adapter's publisher and subscriber.
 * Requests fail fast while Redis is down (no offline queue, one retry) so a
 * route answers `STORE_UNAVAILABLE` instead of hanging.
 */
async function connectRedis(url: string): Promise<Redis[]> {
  const store = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: REDIS_CONNECT_TIMEOUT_MS });
  const pub = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: REDIS_CONNECT_TIMEOUT_MS });
  const sub = pub.duplicate();
  const clients = [store, pub, sub];
  // ioredis reports every failed reconnect as an `error` event; once running,
  // say so at most every 10 s (the stores' own failures reach the clients as
  // STORE_UNAVAILABLE). During start-up the failed connect() says it instead.
  let started = false;
  let startupError: Error | undefined;
  let lastWarning = 0;
  for (const client of clients) {
    client.on("error", (error: Error) => {
      if (!started) {
        startupError ??= error;
        return;
      }
      if (Date.now() - lastWarning < 10_000) return;
      lastWarning = Date.now();
      console.warn(`[redis] ${error.message}; retrying.`);
    });
  }
  try {
    await Promise.all(clients.map((client) => client.connect()));
  } catch (error) {
    clients.forEach((client) => client.disconnect());
    const reason = startupError ?? error;
    throw new Error(`Cannot reach Redis at ${redactUrl(url)}: ${reason instanceof Error ? reason.message : String(reason)}`, { cause: reason });
  }
  started = true;
  return clients;
}

/** A Redis or PostgreSQL URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparseable URL)";
  }
}
