import type { DocumentStore, DocumentStoreOptions, InboxOptions, InboxStore, StreamStore, StreamStoreOptions } from "@truss/core";
import type { Pool } from "pg";
import { postgresDocumentStore } from "./documents.js";
import { postgresInboxStore } from "./inbox.js";
import { postgresStreamStore } from "./streams.js";
import type { SweepOptions } from "./sweep.js";

export { postgresDocumentStore, type PostgresDocumentStoreOptions } from "./documents.js";
export { postgresInboxStore, type PostgresInboxStoreOptions } from "./inbox.js";
export { postgresStreamStore, type PostgresStreamStoreOptions } from "./streams.js";
export { DEFAULT_STORE_TIMEOUT_MS, type PostgresStoreConnection } from "./sql.js";
export { DEFAULT_SWEEP_BATCH, DEFAULT_SWEEP_INTERVAL_MS, type SweepOptions } from "./sweep.js";

/** Options of {@link postgresStores}. */
export interface PostgresStoresOptions {
  /** The schema `migrate(pool, { schema })` created the tables in. Default `"truss"`. */
  schema?: string;
  /**
   * How long one store call may take, waiting for a pooled connection
   * included, before it rejects (and the engine answers
   * `STORE_UNAVAILABLE`), in ms. Default 5,000.
   */
  timeoutMs?: number;
  /** How many versions, and how many bytes of them, each document's history keeps, and how its mutation ids are remembered. */
  documents?: DocumentStoreOptions;
  /** Inbox TTL and length cap, and how often and how much its sweep clears. */
  inbox?: InboxOptions & SweepOptions;
  /** How many entries, for how long, each broadcast stream keeps, how long an idle stream is remembered, and its sweep. */
  streams?: StreamStoreOptions & SweepOptions;
}

/** The stores, ready for `createRealtimeEngine({ ...stores })`. */
export interface PostgresStores {
  /** Versioned documents with compare-and-set, in the database of record. */
  documents: DocumentStore;
  /** Per-user durable message log with a cursor per device. */
  inbox: InboxStore;
  /** Bounded, offset-numbered history of company and topic broadcasts. */
  streams: StreamStore;
}

/**
 * Document, inbox and stream stores on one `pg` pool, in the tables
 * `migrate(pool, { schema })` creates. Every engine node that uses the same
 * database and schema shares them. Presence and the cross-node adapter stay
 * on memory or Redis: presence is ephemeral state rewritten by every
 * heartbeat, and the adapter is pub/sub, both of which Redis does well and a
 * database of record should not carry.
 *
 * Each call runs one statement (a server-side function for the multi-step
 * ones) and rejects within `timeoutMs` when PostgreSQL cannot be reached, so
 * the engine answers `STORE_UNAVAILABLE`; the next call after PostgreSQL is
 * back works, without a restart. If the pool has no `'error'` listener, one
 * that ignores the error is added, since an idle client dropped by a
 * restarting server would otherwise end the process.
 *
 * @example
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * await migrate(pool);
 * const engine = createRealtimeEngine({ auth, ...postgresStores(pool), presence: redisPresenceStore({ redis }) });
 *
 * @throws TypeError when `pool` is not a pg Pool or `schema` is not an SQL identifier.
 * @throws RangeError when an option is not a positive integer.
 */
export function postgresStores(pool: Pool, options: PostgresStoresOptions = {}): PostgresStores {
  const connection = { pool, ...(options.schema === undefined ? {} : { schema: options.schema }), ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }) };
  return {
    documents: postgresDocumentStore({ ...options.documents, ...connection }),
    inbox: postgresInboxStore({ ...options.inbox, ...connection }),
    streams: postgresStreamStore({ ...options.streams, ...connection }),
  };
}
