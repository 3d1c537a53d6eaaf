import { randomUUID } from "node:crypto";
import {
  idempotencyKeyOf,
  resolveStreamStoreOptions,
  STREAM_IDEMPOTENCY_KEYS_PER_ENTRY,
  type StreamEntry,
  type StreamGapReason,
  type StreamStore,
  type StreamStoreOptions,
} from "@truss/core";
import { refuseNul, Statements, toNumber, totalsSlot, type PostgresStoreConnection } from "./sql.js";
import { Sweeper, type SweepOptions } from "./sweep.js";

/** Options of {@link postgresStreamStore}. */
export interface PostgresStreamStoreOptions extends StreamStoreOptions, PostgresStoreConnection, SweepOptions {}

interface AppendRow {
  r_epoch: string;
  r_offset: string;
  r_ts: string;
  duplicate: boolean;
  kept: boolean;
  r_event: string | null;
  r_data: string | null;
}

interface ReadRow {
  r_epoch: string;
  r_top: string;
  r_gap: StreamGapReason | null;
  r_offset: string | null;
  r_ts: string | null;
  r_event: string | null;
  r_data: string | null;
}

/**
 * A {@link StreamStore} on PostgreSQL, in the `stream*` tables `migrate()`
 * creates. Each stream has a row with its epoch and top offset that every
 * append and read locks (`SELECT … FOR UPDATE`, created with
 * `INSERT … ON CONFLICT`); the SQL function `stream_append` checks the
 * idempotency key, takes the next offset, stores the entry, drops entries
 * past the TTL and trims to `size` under that lock, in one statement, so
 * offsets are contiguous and ordered whichever node appends, and two appends
 * with one key store one entry. Entry times come from the server's clock.
 *
 * The epoch is a random id set when the stream's row is created, on its
 * first append or read, so a read before any append fixes the epoch the next
 * append uses. A read takes no lock and writes nothing when nothing at the
 * stream's head has expired and the stream was touched within `idleMs / 10`,
 * so the reads of many devices connecting at once do not queue on one row.
 * A stream neither appended to nor read for `ttlMs + idleMs` (less up to
 * `idleMs / 10`, as reads refresh it that often) is forgotten: its next call starts a new epoch with no entries and no
 * keys, and a bounded sweep (at most `sweepBatch` streams a run, at most
 * once per `sweepIntervalMs`, started by a call of this store) deletes such
 * streams so they do not stay in the database. What the size cap and the
 * TTL drop is counted in `stream_totals`, shared by every node; what goes
 * with a forgotten stream is not, as in the Redis store.
 *
 * Every call rejects within `timeoutMs` (default 5 s) when PostgreSQL cannot
 * be reached, and works again, without a restart, once it can.
 *
 * @throws RangeError when `size`, `ttlMs`, `idleMs` or a sweep option is not a positive integer.
 * @throws TypeError when `pool` is not a pg Pool or `schema` not an SQL identifier; from `append` (as a rejection, nothing stored) when the idempotency key is malformed, from `read` when `after` is not an offset.
 * @throws TrussError `INVALID_PAYLOAD` from any call whose ids, event name or key contain U+0000, which PostgreSQL text cannot hold, or that PostgreSQL refuses for good (an id too long to index).
 */
export function postgresStreamStore(options: PostgresStreamStoreOptions): StreamStore {
  const { size, ttlMs, idleMs } = resolveStreamStoreOptions("postgresStreamStore", options);
  const sql = new Statements("postgresStreamStore", options);
  const s = sql.schema;
  const maxKeys = Math.min(STREAM_IDEMPOTENCY_KEYS_PER_ENTRY * size, 2 ** 31 - 1);
  // How stale a stream's last-touched time may be before a read refreshes it (under the row lock).
  const touchEveryMs = Math.max(1, Math.floor(idleMs / 10));
  const sweeper: Sweeper = new Sweeper("postgresStreamStore", options, (): Promise<unknown> => sql.rows(`SELECT ${s}.stream_sweep($1, $2, $3)`, [ttlMs, idleMs, sweeper.batch]));

  return {
    async append(key, event, data, appendOptions) {
      const idempotencyKey = idempotencyKeyOf(appendOptions, "postgresStreamStore");
      refuseNul("postgresStreamStore", { companyId: key.companyId, stream: key.stream, event, idempotencyKey });
      const encoded = data === undefined ? null : JSON.stringify(data);
      const row = await sql.row<AppendRow>(`SELECT * FROM ${s}.stream_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, [
        key.companyId,
        key.stream,
        randomUUID(),
        event,
        encoded,
        idempotencyKey ?? null,
        ttlMs,
        idleMs,
        size,
        maxKeys,
        totalsSlot(key.companyId, key.stream),
      ], { lockTimeout: true });
      sweeper.due();
      const offset = toNumber(row.r_offset);
      const ts = toNumber(row.r_ts);
      if (row.duplicate) {
        // The size cap may have dropped the first entry: its offset and ts still answer for it.
        const entry = row.kept ? toEntry(offset, ts, row.r_event ?? "", row.r_data) : toEntry(offset, ts, event, encoded);
        return { epoch: row.r_epoch, entry, duplicate: true };
      }
      return { epoch: row.r_epoch, entry: toEntry(offset, ts, event, encoded), duplicate: false };
    },

    async read(key, after, limit) {
      refuseNul("postgresStreamStore", { companyId: key.companyId, stream: key.stream });
      if (!(Number.isSafeInteger(after) && after >= 0)) {
        throw new TypeError(`postgresStreamStore: after must be an offset (an integer >= 0), got ${after}`);
      }
      const count = limit > 0 ? Math.min(Math.floor(limit), size, 2 ** 31 - 1) : 0;
      const rows = await sql.rows<ReadRow>(`SELECT * FROM ${s}.stream_read($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, [
        key.companyId,
        key.stream,
        randomUUID(),
        after,
        count,
        ttlMs,
        idleMs,
        totalsSlot(key.companyId, key.stream),
        touchEveryMs,
      ], { lockTimeout: true });
      sweeper.due();
      const [first] = rows;
      if (!first) throw new Error("postgresStreamStore: stream_read returned no row");
      const entries: StreamEntry[] = [];
      for (const row of rows) {
        if (row.r_offset !== null) entries.push(toEntry(toNumber(row.r_offset), toNumber(row.r_ts), row.r_event ?? "", row.r_data));
      }
      return { epoch: first.r_epoch, top: toNumber(first.r_top), entries, gap: first.r_gap };
    },

    async trimmed() {
      const row = await sql.row<{ trimmed: string | null; expired: string | null }>(
        `SELECT sum(trimmed) AS trimmed, sum(expired) AS expired FROM ${s}.stream_totals`,
      );
      return { trimmed: toNumber(row.trimmed), expired: toNumber(row.expired) };
    },

    async ping() {
      await sql.rows("SELECT 1");
    },
  };
}

function toEntry(offset: number, ts: number, event: string, encodedData: string | null): StreamEntry {
  return { offset, event, data: encodedData === null ? undefined : JSON.parse(encodedData), ts };
}
