import type { OutboxBatch, OutboxOutcome, OutboxRow, OutboxSource, OutboxTarget, UndeliveredChoice } from "@truss/core";
import type { Notification, Pool, PoolClient } from "pg";
import { guardPoolErrors } from "./pool.js";
import { notMigrated } from "./schema.js";

/** Options of `outbox.source()`. */
export interface PostgresOutboxSourceOptions {
  /**
   * Wake the relay with `LISTEN`/`NOTIFY` (one pooled connection held for
   * it). Without, the relay only polls.
   * @default true
   */
  listen?: boolean;
  /**
   * How long a claimed batch may hold its rows, in ms: the claim's
   * transaction ends after this much idle time (PostgreSQL's
   * `idle_in_transaction_session_timeout`), so a relay that hangs gives its
   * streams back; its rows are claimed and published again by another.
   * @default 60000
   */
  claimTimeoutMs?: number;
  /**
   * Longest pause before reconnecting the listening connection after it was
   * lost; the pauses start at 100 ms and double.
   * @default 5000
   */
  maxReconnectDelayMs?: number;
  /**
   * The most bytes of one row's data (as JSON text) a claim reads. A row
   * past it, which only SQL written around `outbox.with()` can make (that
   * caps data at 64 KB), is marked failed with `PAYLOAD_TOO_LARGE` without
   * its data ever reaching Node.js, where a string of hundreds of megabytes
   * would end the process.
   * @default 16777216 (16 MiB)
   */
  maxRowBytes?: number;
}

/**
 * How many streams a claim looks at, and how many of the oldest pending rows
 * it reads besides: `limit` times this, and at least {@link CANDIDATES_MIN}.
 * Bounds a claim's work however many streams and rows are pending.
 */
const CANDIDATES_FACTOR = 10;
const CANDIDATES_MIN = 1000;

interface ClaimedRow {
  id: string;
  kind: OutboxTarget["kind"];
  company_id: string;
  topic: string | null;
  user_id: string | null;
  event: string;
  data: string | null;
  idempotency_key: string | null;
  /** The jsonb `undelivered` column as text: `false` or `{"afterMs": n}`, or null. */
  undelivered: string | null;
  age_ms: number;
  created_us: string;
  /** The data's JSON text length in bytes; `data` is null when it is past `maxRowBytes`. */
  data_bytes: number | null;
}

/**
 * A row of the claim's answer: a claimed row, or, the one row when none was
 * claimed, nulls; each carries where the next claim's scan of streams
 * starts (null: from the first stream again).
 */
type ClaimAnswer = { next_stream: string | null } & (ClaimedRow | { [column in keyof ClaimedRow]: null });

function isClaimed(row: ClaimAnswer): row is ClaimAnswer & ClaimedRow {
  return row.id !== null;
}

/**
 * The relay's side of a PostgreSQL outbox. A claim is a transaction on a
 * pooled connection: it holds up to `limit` streams, each by a
 * transaction-scoped advisory lock on its name (a stream another relay holds
 * is skipped), and takes the first rows of each, all locked until `settle`
 * deletes the published rows, marks the failed ones, and commits, which
 * lets the streams go. A relay that dies mid-batch leaves its transaction to be rolled
 * back by PostgreSQL, and its rows to the next claim.
 *
 * The streams to take are found per stream, not per row, so a long backlog
 * in one stream never hides another stream's rows: a skip-scan of the
 * `(stream, id)` index yields each pending stream's oldest row (the streams
 * after where the previous claim's scan stopped, in turn, when there are
 * more than a claim looks at), joined by the streams of the oldest pending
 * rows overall. The streams with the oldest rows are taken first, and each
 * takes an equal part of the batch.
 */
export class PostgresOutboxSource implements OutboxSource {
  private readonly claimSql: string;
  private readonly settleDeleteSql: string;
  private readonly settleFailSql: string;
  private readonly claimTimeoutMs: number;
  private readonly maxReconnectDelayMs: number;
  private readonly maxRowBytes: number;
  private listener: PoolClient | undefined;
  private connecting: Promise<void> | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectAttempts = 0;
  private closed = false;
  /** A wake-up that came while nobody waited: the next wait returns at once. */
  private woken = false;
  private readonly waiters = new Set<() => void>();
  /** Where the next claim's scan of streams starts (the stream names after it come first): "" for the first. */
  private nextStream = "";
  /**
   * The first key of the advisory locks that hold this table's streams (the
   * second is the stream name's hash): the table's own, so the locks of
   * another schema's outbox, or the application's, never meet them.
   */
  private readonly lockSpace: number;

  constructor(
    private readonly pool: Pool,
    schema: string,
    private readonly schemaName: string,
    options: PostgresOutboxSourceOptions,
  ) {
    // The relay holds pooled connections in the background, on the application's pool.
    guardPoolErrors(pool);
    this.claimTimeoutMs = positive(options.claimTimeoutMs, 60_000, "claimTimeoutMs");
    this.maxReconnectDelayMs = positive(options.maxReconnectDelayMs, 5000, "maxReconnectDelayMs");
    this.maxRowBytes = positive(options.maxRowBytes, 16 * 1024 * 1024, "maxRowBytes");
    const table = `${schema}.outbox`;
    this.lockSpace = lockSpaceOf(`truss_outbox:${schemaName}`);
    // A stream's oldest pending row is its head. Heads come from a skip-scan of the (stream, id) index, one
    // index probe per stream ($2 streams from $3 on, and the stream after them, where the next claim starts),
    // and from the oldest $2 pending rows, so the streams with the oldest rows are seen when there are more
    // streams than one scan takes. The claim always answers one row: with nothing claimed, its id is null.
    this.claimSql = `WITH RECURSIVE scanned AS (
        (SELECT stream, id, 1 AS n FROM ${table} WHERE failed_at IS NULL AND stream >= $3 ORDER BY stream, id LIMIT 1)
        UNION ALL
        SELECT next.stream, next.id, s.n + 1 FROM scanned s CROSS JOIN LATERAL (
          SELECT stream, id FROM ${table} t WHERE t.failed_at IS NULL AND t.stream > s.stream ORDER BY t.stream, t.id LIMIT 1
        ) next WHERE s.n <= $2
      ), oldest AS (
        -- Not the streams the relay holds back ($4): their rows would fill the batch, and no other stream would move.
        SELECT id, stream FROM ${table} WHERE failed_at IS NULL AND stream <> ALL($4::text[]) ORDER BY id LIMIT $2
      ), heads AS (
        SELECT id FROM scanned WHERE n <= $2 AND stream <> ALL($4::text[])
        UNION
        (SELECT DISTINCT ON (stream) id FROM oldest ORDER BY stream, id)
      ), held AS (
        -- A stream is held by a transaction-scoped advisory lock on its name, taken oldest head first until
        -- $1 streams are held (the filter runs row by row under the LIMIT): not by a lock on its oldest row,
        -- which a row committed late with a lower id would make a new, unlocked head of a stream another
        -- relay is still publishing. A stream another relay holds is skipped, never waited for.
        SELECT stream FROM (
          SELECT o.stream, o.id FROM ${table} o WHERE o.id IN (SELECT id FROM heads) AND o.failed_at IS NULL ORDER BY o.id
        ) head WHERE pg_try_advisory_xact_lock($5::int, hashtext(head.stream)) LIMIT $1
      ), share AS (
        -- Each stream held takes an equal part of the batch, read as the first rows of that stream
        -- through the (stream, id) index, however many rows the streams hold in all.
        SELECT stream, greatest(1, $1 / count(*) OVER ()) AS n FROM held
      ), claimed AS (
        -- The data's text, made once here, and its length: a row past $6 bytes is answered without it.
        SELECT r.*, r.data::text AS data_text FROM share s CROSS JOIN LATERAL (
          SELECT * FROM ${table} t WHERE t.stream = s.stream AND t.failed_at IS NULL ORDER BY t.id LIMIT s.n FOR UPDATE
        ) r
      )
      SELECT (SELECT stream FROM scanned WHERE n > $2) AS next_stream,
        r.id::text AS id, r.kind, r.company_id, r.topic, r.user_id, r.event, r.idempotency_key, r.undelivered::text AS undelivered,
        CASE WHEN octet_length(r.data_text) > $6 THEN NULL ELSE r.data_text END AS data, octet_length(r.data_text) AS data_bytes,
        (extract(epoch FROM clock_timestamp() - r.created_at) * 1000)::float8 AS age_ms,
        (extract(epoch FROM r.created_at) * 1000000)::bigint::text AS created_us
      FROM (SELECT) one LEFT JOIN claimed r ON true
      -- r.id, the bigint: the output column id is text, and "10" sorts before "9".
      ORDER BY r.id`;
    this.settleDeleteSql = `DELETE FROM ${table} WHERE id = ANY($1::bigint[])`;
    this.settleFailSql = `UPDATE ${table} AS o SET failed_at = clock_timestamp(), failed_code = f.code, failed_message = f.message
      FROM unnest($1::bigint[], $2::text[], $3::text[]) AS f(id, code, message) WHERE o.id = f.id`;
    if (options.listen !== false) void this.connectListener();
  }

  async claim(limit: number, skip?: ReadonlySet<string>): Promise<OutboxBatch | null> {
    const client = await this.pool.connect();
    // A connection lost while the batch is out errors on the client; the next query on it rejects.
    const onError = () => undefined;
    client.on("error", onError);
    let released = false;
    const release = (error?: Error) => {
      if (released) return;
      released = true;
      client.off("error", onError);
      client.release(error);
    };
    try {
      // One round trip. lock_timeout bounds a wait on a row of a stream another relay is finishing with.
      await client.query(
        `BEGIN; SET LOCAL idle_in_transaction_session_timeout = ${this.claimTimeoutMs}; SET LOCAL lock_timeout = ${Math.min(this.claimTimeoutMs, 10_000)}`,
      );
      const candidates = Math.max(CANDIDATES_MIN, limit * CANDIDATES_FACTOR);
      const { rows: answer } = await client.query<ClaimAnswer>(this.claimSql, [limit, candidates, this.nextStream, skip ? [...skip] : [], this.lockSpace, this.maxRowBytes]);
      this.nextStream = answer[0]?.next_stream ?? "";
      const rows = answer.filter(isClaimed);
      if (rows.length === 0) {
        await client.query("COMMIT");
        release();
        return null;
      }
      return {
        rows: rows.map((row) => toRow(row, this.schemaName, this.maxRowBytes)),
        settle: async (outcome: OutboxOutcome) => {
          if (released) throw new Error("outbox batch already settled");
          try {
            if (outcome.done.length > 0) await client.query(this.settleDeleteSql, [outcome.done]);
            if (outcome.failed.length > 0) {
              await client.query(this.settleFailSql, [
                outcome.failed.map((failure) => failure.id),
                outcome.failed.map((failure) => failure.code),
                outcome.failed.map((failure) => failure.message.slice(0, 2000)),
              ]);
            }
            await client.query("COMMIT");
            release();
          } catch (error) {
            await client.query("ROLLBACK").catch(() => undefined);
            release(asError(error));
            throw error;
          }
        },
      };
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      release(asError(error));
      throw notMigrated("postgresOutbox", this.schemaName, error) ?? error;
    }
  }

  wait(timeoutMs: number, signal: AbortSignal): Promise<void> {
    if (this.woken || signal.aborted) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      timer.unref?.();
      signal.addEventListener("abort", done, { once: true });
      this.waiters.add(done);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    // A listening connection still being made is released by connectListener once it is made,
    // and not waited for here: to a server that does not answer, that can take minutes.
    const listener = this.listener;
    this.listener = undefined;
    if (listener) {
      await listener.query("UNLISTEN *").catch(() => undefined);
      // Not back to the pool: a connection that listened is closed.
      listener.release(true);
    }
    this.wake();
  }

  /** Wakes the waiting relay, or the next wait if none waits now. */
  private wake(): void {
    if (this.waiters.size === 0) {
      this.woken = true;
      return;
    }
    for (const waiter of [...this.waiters]) waiter();
  }

  private connectListener(): Promise<void> {
    this.connecting ??= (async () => {
      let client: PoolClient | undefined;
      try {
        client = await this.pool.connect();
        const listening = client;
        listening.on("notification", (message: Notification) => {
          if (message.channel === "truss_outbox" && message.payload === this.schemaName) this.wake();
        });
        const lost = () => this.listenerLost(listening);
        listening.on("error", lost);
        listening.on("end", lost);
        await listening.query("LISTEN truss_outbox");
        if (this.closed) {
          listening.release(true);
          return;
        }
        this.listener = listening;
        this.reconnectAttempts = 0;
        // Rows committed while nobody listened would otherwise wait for the poll.
        this.wake();
      } catch (error) {
        client?.release(asError(error));
        this.scheduleReconnect();
      }
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private listenerLost(client: PoolClient): void {
    if (this.listener !== client) return;
    this.listener = undefined;
    client.release(true);
    // A notification may have been lost with the connection.
    this.wake();
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const delay = Math.min(this.maxReconnectDelayMs, 100 * 2 ** Math.min(this.reconnectAttempts, 16));
    this.reconnectAttempts += 1;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.closed) void this.connectListener();
    }, delay);
    this.reconnectTimer.unref?.();
  }
}

/**
 * A claimed row as the relay takes it, with its `undelivered` choice when
 * the application gave one. Its idempotency key is the
 * application's, else one made of the schema, the row id and the time it
 * was written: it cannot meet a key an application chose, nor the key of an
 * earlier row with the same id (a table restored from a backup, or dropped
 * and created again, numbers its rows from where it was).
 */
function toRow(row: ClaimedRow, schemaName: string, maxRowBytes: number): OutboxRow {
  const target: OutboxTarget =
    row.kind === "company"
      ? { kind: "company", companyId: row.company_id }
      : row.kind === "topic"
        ? { kind: "topic", companyId: row.company_id, topic: row.topic ?? "" }
        : { kind: "user", companyId: row.company_id, userId: row.user_id ?? "" };
  return {
    id: row.id,
    target,
    event: row.event,
    data: row.data === null ? undefined : (JSON.parse(row.data) as unknown),
    idempotencyKey: row.idempotency_key ?? `truss-outbox:${schemaName}:${row.id}:${row.created_us}`,
    ...(row.undelivered === null ? {} : { undelivered: JSON.parse(row.undelivered) as UndeliveredChoice }),
    ageMs: row.age_ms,
    ...(row.data_bytes !== null && row.data_bytes > maxRowBytes
      ? { unreadable: { code: "PAYLOAD_TOO_LARGE", message: `The row's data is ${row.data_bytes} bytes of JSON; the relay reads at most ${maxRowBytes} of one row (maxRowBytes).` } }
      : {}),
  };
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!(Number.isSafeInteger(value) && value > 0)) throw new TypeError(`outbox.source(): ${name} must be a positive integer, got ${String(value)}`);
  return value;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** A 32-bit key for `name` (FNV-1a), the first key of a two-key advisory lock. */
function lockSpaceOf(name: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < name.length; index++) {
    hash ^= name.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash | 0;
}
