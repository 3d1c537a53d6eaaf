import { DEFAULTS, outboxEntry, TrussError, type OutboxEmitOptions, type OutboxEntry, type OutboxLimits, type OutboxTarget, type OutboxSource, type OutboxUserEmitOptions } from "@truss/core";
import type { Pool } from "pg";
import { DEFAULT_SCHEMA, notMigrated, quotedSchema } from "./schema.js";
import { PostgresOutboxSource, type PostgresOutboxSourceOptions } from "./source.js";
import { refuseNul } from "./stores/sql.js";

/**
 * Longest company id, user id or topic an outbox row takes, in bytes of
 * UTF-8: two of them and the longest idempotency key fit in one index row
 * of the PostgreSQL stores (at most 2,704 bytes), so a row written is a row
 * the stores can take.
 */
const MAX_OUTBOX_ID_BYTES = 512;

/** The channel every outbox NOTIFYs on, with its schema as the payload. */
export const OUTBOX_CHANNEL = "truss_outbox";

/**
 * What `outbox.with(tx)` runs its one INSERT through: a `pg` `PoolClient` (or
 * `Client`) inside the application's transaction, or anything that runs one
 * parameterised query (`$1`, `$2`, ... each used once, in order) in it.
 */
export interface OutboxQueryable {
  /** Runs `text` with `values` in the application's transaction. */
  query(text: string, values: unknown[]): Promise<unknown>;
}

/** Options of {@link postgresOutbox}. */
export interface PostgresOutboxOptions {
  /**
   * The schema `migrate()` created the `outbox` table in.
   * @default "truss"
   */
  schema?: string;
  /**
   * The limits data is checked against at the call: give the engine's own
   * `limits.maxDepth` and `limits.maxMessageBytes` when you changed them, so
   * a row the engine would refuse is refused in your transaction instead.
   * Default: the engine's defaults.
   */
  limits?: OutboxLimits;
  /**
   * Whether each row's transaction also NOTIFYs the relays, which wake at
   * its commit. PostgreSQL serialises the commits of transactions that
   * NOTIFY (one lock on its notification queue), so past a few hundred
   * publishing commits a second they start to queue behind each other. At
   * such rates write without it and let the relays poll: give `relay()` a
   * short `pollIntervalMs` (50 to 100 ms); a row then reaches devices within
   * about one interval of its commit.
   * @default true
   */
  notify?: boolean;
}

/**
 * Emits one event into the outbox, as the engine's emitters do into a
 * stream or an inbox. `Options` are {@link OutboxEmitOptions} for a company
 * or topic, {@link OutboxUserEmitOptions} (with `undelivered`) for a user.
 */
export interface OutboxEmitter<Options extends OutboxEmitOptions = OutboxEmitOptions> {
  /**
   * Checks `data` (as the engine would: JSON only, within the limits) and
   * writes one row, and a NOTIFY, in the transaction `tx` runs: nothing is
   * published unless and until it commits. Resolves once the row is written.
   *
   * @throws TypeError (as a rejection) for an id, topic, event or option the engine would refuse.
   * @throws TrussError `INVALID_PAYLOAD` or `PAYLOAD_TOO_LARGE` (as a rejection), before anything is written;
   * `INVALID_PAYLOAD` too for an id, topic, event or key with U+0000 (PostgreSQL text cannot hold it), or an id
   * or topic longer than 512 bytes of UTF-8.
   */
  emit(event: string, data: unknown, options?: Options): Promise<void>;
}

/** The outbox inside one transaction: `outbox.with(tx)`. */
export interface OutboxWriter {
  /** Publishes to every device of a company, in the company's stream. */
  toCompany(companyId: string): OutboxEmitter;
  /** Publishes to the devices of a company subscribed to `topic`, in the topic's stream. */
  toTopic(companyId: string, topic: string): OutboxEmitter;
  /**
   * Publishes durably to every device of one user of a company, through the
   * user's inbox. Its `undelivered` option (`false` or `{ afterMs }`) is
   * stored with the row and given to the engine's `toUser(...).emit`.
   */
  toUser(companyId: string, userId: string): OutboxEmitter<OutboxUserEmitOptions>;
}

/** The outbox of one schema: write rows in transactions, and relay them. */
export interface PostgresOutbox {
  /** The outbox inside the transaction `tx` runs (a `PoolClient` after `BEGIN`). */
  with(tx: OutboxQueryable): OutboxWriter;
  /**
   * The relay's side, for `relay(engine, outbox.source())`: claims rows with
   * `FOR UPDATE SKIP LOCKED`, woken by `LISTEN` on a pooled connection of its
   * own (reconnected on its own), with a poll as the fallback.
   */
  source(options?: PostgresOutboxSourceOptions): OutboxSource;
}

/**
 * The outbox in PostgreSQL: `outbox.with(tx).toUser(companyId, userId).emit(...)`
 * inside the application's transaction, and `relay(engine, outbox.source())` on
 * every node. Run `migrate(pool, { schema })` first.
 *
 * @example
 * ```ts
 * const outbox = postgresOutbox(pool);
 * const client = await pool.connect();
 * try {
 *   await client.query("BEGIN");
 *   await client.query("UPDATE expenses SET status = 'approved' WHERE id = $1", [expenseId]);
 *   await outbox.with(client).toUser(companyId, submitterId).emit("expense:approved", { expenseId });
 *   await client.query("COMMIT");
 * } catch (error) {
 *   await client.query("ROLLBACK");
 *   throw error;
 * } finally {
 *   client.release();
 * }
 * ```
 */
export function postgresOutbox(pool: Pool, options: PostgresOutboxOptions = {}): PostgresOutbox {
  const who = "postgresOutbox(pool, { schema })";
  if (!pool || typeof pool.connect !== "function") throw new TypeError(`${who}: pool must be a pg Pool`);
  const schema = quotedSchema(who, options.schema);
  const schemaName = options.schema ?? DEFAULT_SCHEMA;
  const limits = {
    maxDepth: options.limits?.maxDepth ?? DEFAULTS.limits.maxDepth,
    maxMessageBytes: options.limits?.maxMessageBytes ?? DEFAULTS.limits.maxMessageBytes,
  };
  // Each $n once and in order, so a driver with `?` placeholders (Knex) can run it too.
  const notify = options.notify ?? true;
  const columns = `INSERT INTO ${schema}.outbox (stream, kind, company_id, topic, user_id, event, data, idempotency_key, undelivered) VALUES ($1, $2, $3, $4, $5, $6, $7::json, $8, $9::jsonb)`;
  const insert = notify ? `WITH row AS (${columns} RETURNING id) SELECT row.id, pg_notify('${OUTBOX_CHANNEL}', $10) FROM row` : columns;

  const emitter = (tx: OutboxQueryable, target: OutboxTarget): OutboxEmitter<OutboxUserEmitOptions> => ({
    async emit(event, data, emitOptions) {
      const entry = outboxEntry(target, event, data, emitOptions, limits);
      refuseUnstorable(entry);
      const topic = target.kind === "topic" ? target.topic : null;
      const userId = target.kind === "user" ? target.userId : null;
      const undelivered = entry.undelivered === undefined ? null : JSON.stringify(entry.undelivered);
      const values = [entry.stream, target.kind, target.companyId, topic, userId, entry.event, entry.json, entry.idempotencyKey ?? null, undelivered];
      try {
        await tx.query(insert, notify ? [...values, schemaName] : values);
      } catch (error) {
        throw notMigrated("postgresOutbox", schemaName, error) ?? error;
      }
    },
  });

  return {
    with(tx) {
      if (!tx || typeof tx.query !== "function") throw new TypeError("outbox.with(tx): tx must be a pg client in a transaction, or have query(text, values)");
      return {
        toCompany: (companyId) => emitter(tx, { kind: "company", companyId }),
        toTopic: (companyId, topic) => emitter(tx, { kind: "topic", companyId, topic }),
        toUser: (companyId, userId) => emitter(tx, { kind: "user", companyId, userId }),
      };
    },
    source: (sourceOptions = {}) => new PostgresOutboxSource(pool, schema, schemaName, sourceOptions),
  };
}

/**
 * Refuses, at the application's call, an entry the PostgreSQL stores could
 * never take: the relay would publish it only to have it refused.
 *
 * @throws TrussError `INVALID_PAYLOAD` for U+0000 in an id, topic, event or
 * key, or an id or topic over {@link MAX_OUTBOX_ID_BYTES}.
 */
function refuseUnstorable({ target, event, idempotencyKey }: OutboxEntry): void {
  const who = `outbox ${target.kind === "company" ? "toCompany" : target.kind === "topic" ? "toTopic" : "toUser"}(...).emit`;
  const ids = { companyId: target.companyId, ...(target.kind === "topic" ? { topic: target.topic } : {}), ...(target.kind === "user" ? { userId: target.userId } : {}) };
  refuseNul(who, { ...ids, event, idempotencyKey });
  for (const [name, value] of Object.entries(ids)) {
    const bytes = Buffer.byteLength(value);
    if (bytes > MAX_OUTBOX_ID_BYTES) throw new TrussError("INVALID_PAYLOAD", `${who}: ${name} is ${bytes} bytes of UTF-8; the PostgreSQL stores take at most ${MAX_OUTBOX_ID_BYTES}.`);
  }
}
