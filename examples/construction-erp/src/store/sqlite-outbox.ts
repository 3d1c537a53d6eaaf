/**
 * The embedded database's outbox: a `truss_outbox` table in the ERP's SQLite
 * file, written in the same transaction as the change it announces, and the
 * `OutboxSource` that `relay()` of `@truss/core` reads it through. The SQL of
 * the PostgreSQL outbox lives in `@truss/postgres`; this is the same contract
 * on SQLite.
 *
 * - A row's `row_key` (a random UUID) is its id for the relay, and so the
 *   idempotency key of its publish unless the application gave one: a row
 *   published twice (a crash before it was removed) reaches devices once,
 *   and ids never repeat across databases that share one Redis.
 * - Claims hold whole streams: a claim takes no row of a stream another
 *   claim still holds (its lease has not run out), so each stream's rows go
 *   out in order even with several server processes on one file.
 * - Wake-ups: a commit that wrote rows wakes this process's relay at once;
 *   another process's commits are found by the relay's poll.
 * - A `toUser` row keeps the `undelivered` choice it was written with
 *   (`false` or `{ afterMs }`, as JSON), which the relay gives the engine.
 *
 * @module
 */
import { randomUUID } from "node:crypto";
import { outboxEntry, type OutboxBatch, type OutboxLimits, type OutboxOutcome, type OutboxRow, type OutboxSource, type OutboxTarget, type UndeliveredChoice } from "@truss/core";
import { DEFAULTS } from "@truss/core";
import type { Db } from "../db.js";
import type { Announcement } from "./announcer.js";

/** How long a claim holds its rows before another relay may take them (a relay that died mid-batch). */
export const SQLITE_OUTBOX_LEASE_MS = 30_000;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS truss_outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    row_key         TEXT NOT NULL UNIQUE,
    stream          TEXT NOT NULL,
    target          TEXT NOT NULL,
    event           TEXT NOT NULL,
    data            TEXT,
    idempotency_key TEXT,
    undelivered     TEXT,
    created_at      INTEGER NOT NULL,
    claimed_by      TEXT,
    claimed_until   INTEGER,
    failed_code     TEXT,
    failed_message  TEXT,
    failed_at       INTEGER
  );
  CREATE INDEX IF NOT EXISTS truss_outbox_pending ON truss_outbox (seq) WHERE failed_at IS NULL;
`;

interface ClaimedRow {
  seq: number;
  row_key: string;
  target: string;
  event: string;
  data: string | null;
  idempotency_key: string | null;
  undelivered: string | null;
  created_at: number;
}

/** The outbox of one SQLite database: writes in the caller's transaction, wake-ups, and the relay's source. */
export interface SqliteOutbox {
  /** Writes the announcements, checked as the engine checks them; call inside the write's transaction. @throws as `outboxEntry` does. */
  insert(announcements: readonly Announcement[]): void;
  /** Wakes this process's relay; call after the transaction that inserted rows committed. */
  notify(): void;
  /** The relay's side of the table. */
  source(options?: { leaseMs?: number }): OutboxSource;
  /** Rows in the table: pending, claimed or failed. */
  count(): number;
}

/** Creates the table if needed and binds the outbox to `db`. */
export function sqliteOutbox(db: Db, options: { limits?: OutboxLimits; now?: () => number } = {}): SqliteOutbox {
  db.exec(SCHEMA);
  // A file made before rows kept their undelivered choice.
  const columns = db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('truss_outbox')").all();
  if (!columns.some((column) => column.name === "undelivered")) db.exec("ALTER TABLE truss_outbox ADD COLUMN undelivered TEXT");
  const now = options.now ?? Date.now;
  const limits = {
    maxDepth: options.limits?.maxDepth ?? DEFAULTS.limits.maxDepth,
    maxMessageBytes: options.limits?.maxMessageBytes ?? DEFAULTS.limits.maxMessageBytes,
  };
  const insert = db.prepare(
    "INSERT INTO truss_outbox (row_key, stream, target, event, data, idempotency_key, undelivered, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
  );
  const count = db.prepare<[], { count: number }>("SELECT COUNT(*) AS count FROM truss_outbox");
  let woken = false;
  const waiters = new Set<() => void>();

  return {
    insert(announcements) {
      for (const { target, event, data, options: emitOptions } of announcements) {
        const entry = outboxEntry(target, event, data, emitOptions, limits);
        const undelivered = entry.undelivered === undefined ? null : JSON.stringify(entry.undelivered);
        insert.run(randomUUID(), entry.stream, JSON.stringify(target), entry.event, entry.json, entry.idempotencyKey ?? null, undelivered, now());
      }
    },
    notify() {
      woken = true;
      for (const wake of waiters) wake();
    },
    count: () => count.get()!.count,
    source(sourceOptions = {}) {
      const leaseMs = sourceOptions.leaseMs ?? SQLITE_OUTBOX_LEASE_MS;
      const token = randomUUID();
      // Pending rows of streams no live claim holds, oldest first.
      const pending = db.prepare<{ now: number; limit: number }, ClaimedRow>(
        `SELECT seq, row_key, target, event, data, idempotency_key, undelivered, created_at FROM truss_outbox
         WHERE failed_at IS NULL
           AND stream NOT IN (SELECT stream FROM truss_outbox WHERE failed_at IS NULL AND claimed_until > @now)
         ORDER BY seq LIMIT @limit`,
      );
      const hold = db.prepare("UPDATE truss_outbox SET claimed_by = ?, claimed_until = ? WHERE seq = ?");
      const remove = db.prepare("DELETE FROM truss_outbox WHERE row_key = ? AND claimed_by = ?");
      const fail = db.prepare(
        "UPDATE truss_outbox SET failed_code = ?, failed_message = ?, failed_at = ?, claimed_by = NULL, claimed_until = NULL WHERE row_key = ? AND claimed_by = ?",
      );
      const release = db.prepare("UPDATE truss_outbox SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ?");

      const claim = db.transaction((limit: number): ClaimedRow[] => {
        const at = now();
        const rows = pending.all({ now: at, limit });
        for (const row of rows) hold.run(token, at + leaseMs, row.seq);
        return rows;
      });
      const settle = db.transaction((outcome: OutboxOutcome) => {
        for (const id of outcome.done) remove.run(id, token);
        for (const failure of outcome.failed) fail.run(failure.code, failure.message.slice(0, 2000), now(), failure.id, token);
        release.run(token);
      });

      return {
        async claim(limit): Promise<OutboxBatch | null> {
          woken = false;
          const claimed = claim.immediate(limit);
          if (claimed.length === 0) return null;
          const at = now();
          const rows: OutboxRow[] = claimed.map((row) => ({
            id: row.row_key,
            target: JSON.parse(row.target) as OutboxTarget,
            event: row.event,
            data: row.data === null ? undefined : JSON.parse(row.data),
            ...(row.idempotency_key === null ? {} : { idempotencyKey: row.idempotency_key }),
            ...(row.undelivered === null ? {} : { undelivered: JSON.parse(row.undelivered) as UndeliveredChoice }),
            ageMs: Math.max(0, at - row.created_at),
          }));
          return {
            rows,
            async settle(outcome) {
              settle.immediate(outcome);
            },
          };
        },
        wait(timeoutMs, signal) {
          if (woken || signal.aborted) {
            woken = false;
            return Promise.resolve();
          }
          return new Promise<void>((resolve) => {
            const done = () => {
              clearTimeout(timer);
              waiters.delete(done);
              signal.removeEventListener("abort", done);
              woken = false;
              resolve();
            };
            const timer = setTimeout(done, timeoutMs);
            waiters.add(done);
            signal.addEventListener("abort", done, { once: true });
          });
        },
        async close() {
          if (db.open) release.run(token);
        },
      };
    },
  };
}
