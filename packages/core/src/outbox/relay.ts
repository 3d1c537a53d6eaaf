import { ERROR_CODES, errorAction, isRetryable, type ErrorCode } from "@truss/protocol";
import type { RealtimeEngine } from "../engine/api.js";
import { isTrussError, messageOf, TrussError } from "../kernel/errors.js";
import type { EventCatalog } from "../kernel/events.js";
import { ADD_ENGINE_PART, type HostsEngineParts } from "../kernel/lifecycle.js";
import { consoleLogger, guardedLogger, silentLogger, type Logger } from "../kernel/logger.js";
import { secondsSince, type MetricsRegistry } from "../kernel/metrics.js";
import type { UndeliveredChoice } from "../undelivered/options.js";
import { outboxStream } from "./entry.js";
import type { OutboxBatch, OutboxFailure, OutboxRow, OutboxSource } from "./source.js";

/** The relay's timing and batch size: the third argument of {@link relay}. */
export interface OutboxRelayOptions {
  /**
   * Most rows claimed and published at once.
   * @default 100
   */
  batchSize?: number;
  /**
   * Longest time between two claims when no wake-up comes: the bound on how
   * late a row whose wake-up was lost is published.
   * @default 1000
   */
  pollIntervalMs?: number;
  /**
   * First pause after a transient failure (the database or a store down);
   * doubled at each failure in a row, up to `maxBackoffMs`.
   * @default 100
   */
  minBackoffMs?: number;
  /**
   * Longest pause between two attempts while failures go on.
   * @default 5000
   */
  maxBackoffMs?: number;
  /** Where the relay logs. Default: the engine's logger (`console` when the engine's is out of reach). */
  logger?: Logger | false;
}

/** What one relay has done since it started. */
export interface OutboxRelayStats {
  /** Rows published and removed. */
  readonly published: number;
  /** Rows the engine refused for good, kept in the table as failed. */
  readonly failed: number;
  /** Publishes that failed for a transient reason and were left to be retried. */
  readonly retried: number;
  /** Batches claimed with at least one row. */
  readonly batches: number;
  /** Age of the oldest row of the last batch when it was claimed, in ms; 0 when nothing was pending. */
  readonly lagMs: number;
}

/** A running relay: {@link relay}'s handle. */
export interface OutboxRelay {
  /** What it has done so far. */
  readonly stats: OutboxRelayStats;
  /**
   * Stops claiming, lets the batch in progress finish and settle (waiting
   * at most 10 s: a database that does not answer must not hold up a
   * shutdown; rows of an unsettled batch are claimed again), and stops the
   * source listening. A claim still waiting when it is called (for a pooled
   * connection, say) publishes nothing, even if it resolves after `close()`
   * returned: its batch is given back. Called by the engine's `close()` too;
   * idempotent.
   */
  close(): Promise<void>;
}

/** The emitters a relay publishes through: the engine's, with the idempotency key the stored stream and inbox appends check, and a user message's undelivered choice. */
interface RelayEngine {
  toCompany(companyId: string): { emit(event: string, data: unknown, options?: { idempotencyKey?: string }): Promise<unknown> };
  toTopic(companyId: string, topic: string): { emit(event: string, data: unknown, options?: { idempotencyKey?: string }): Promise<unknown> };
  toUser(companyId: string, userId: string): { emit(event: string, data: unknown, options?: { idempotencyKey?: string; undelivered?: UndeliveredChoice }): Promise<unknown> };
  readonly io?: unknown;
}

const DEFAULT_BATCH_SIZE = 100;
const DEFAULT_POLL_INTERVAL_MS = 1000;
const DEFAULT_MIN_BACKOFF_MS = 100;
const DEFAULT_MAX_BACKOFF_MS = 5000;
/** Longest `close()` waits for the batch in progress. */
const CLOSE_WAIT_MS = 10_000;

/**
 * Relays an outbox to devices through `engine`: claims batches of committed
 * rows from `source`, publishes each with its idempotency key (the row's id
 * unless the application gave one) and, for a `toUser` row, its
 * `undelivered` choice, and settles the batch. A row the engine
 * refuses for good (`INVALID_PAYLOAD`, `PAYLOAD_TOO_LARGE`, an id or topic it
 * does not take) is marked failed with its code, counted in
 * `truss_outbox_failed_total`, logged once, and never holds back the rows
 * behind it; a transient failure (`STORE_UNAVAILABLE`, the database down)
 * leaves that row and the rest of its stream for the next claim, after a
 * backoff, so each stream stays in order. A refusal for what one company
 * holds (a full inbox quota: `QUOTA_EXCEEDED`) holds that stream alone, with
 * a backoff of its own, while the other streams go on.
 *
 * Run one on every node that has an engine: the source hands each stream to
 * one relay at a time. The relay starts when the engine is attached (at
 * once if it already is) and stops with `engine.close()`.
 *
 * @throws Error when `engine.close()` was called already; `source` is then
 * closed.
 *
 * @example
 * ```ts
 * const engine = createRealtimeEngine({ auth });
 * engine.attach(httpServer);
 * relay(engine, postgresOutbox(pool).source());
 * ```
 */
export function relay<C extends EventCatalog>(engine: RealtimeEngine<C>, source: OutboxSource, options: OutboxRelayOptions = {}): OutboxRelay {
  const resolved = resolveRelayOptions(options);
  // Joins the engine's lifecycle (started when it is bound, stopped first at close()) and takes its logger and
  // metrics. A wrapper that only forwards the public API has no such hook: the relay then logs to its own
  // logger, counts no metrics, starts at once and stops with `close()`.
  const host = (engine as unknown as Partial<HostsEngineParts>)[ADD_ENGINE_PART];
  let loop: OutboxRelayLoop | undefined;
  let joined: ReturnType<HostsEngineParts[typeof ADD_ENGINE_PART]> | undefined;
  try {
    joined = host?.call(engine, { start: () => loop!.start(), stop: () => loop!.close() });
  } catch (error) {
    // An engine that is closing refuses it: the source is the relay's to close, and may be listening already.
    void source.close?.().catch(() => undefined);
    throw error;
  }
  // The engine hands over its logger already guarded (guardedLogger); one given to the relay is guarded here.
  const logger = options.logger === false ? silentLogger : options.logger ? guardedLogger(options.logger) : (joined?.logger ?? consoleLogger);
  loop = new OutboxRelayLoop(engine as unknown as RelayEngine, source, resolved, logger, joined?.metrics ?? null);
  if (!joined || (engine as unknown as RelayEngine).io !== undefined) loop.start();
  return loop;
}

interface ResolvedRelayOptions {
  batchSize: number;
  pollIntervalMs: number;
  minBackoffMs: number;
  maxBackoffMs: number;
}

function resolveRelayOptions(options: OutboxRelayOptions): ResolvedRelayOptions {
  const positive = (value: number | undefined, fallback: number, name: string) => {
    if (value === undefined) return fallback;
    if (!(Number.isSafeInteger(value) && value > 0)) throw new TypeError(`relay options: ${name} must be a positive integer; got ${String(value)}.`);
    return value;
  };
  const resolved = {
    batchSize: positive(options.batchSize, DEFAULT_BATCH_SIZE, "batchSize"),
    pollIntervalMs: positive(options.pollIntervalMs, DEFAULT_POLL_INTERVAL_MS, "pollIntervalMs"),
    minBackoffMs: positive(options.minBackoffMs, DEFAULT_MIN_BACKOFF_MS, "minBackoffMs"),
    maxBackoffMs: positive(options.maxBackoffMs, DEFAULT_MAX_BACKOFF_MS, "maxBackoffMs"),
  };
  if (resolved.maxBackoffMs < resolved.minBackoffMs) throw new TypeError("relay options: maxBackoffMs must be at least minBackoffMs.");
  return resolved;
}

/** Why a publish failed, and whether trying again could help. */
interface PublishFailure {
  readonly permanent: boolean;
  readonly code: ErrorCode;
  readonly message: string;
}

/**
 * The relay: one loop that claims, publishes and settles, started by `start`
 * and drained by `close`.
 */
class OutboxRelayLoop implements OutboxRelay {
  private readonly counts = { published: 0, failed: 0, retried: 0, batches: 0, lagMs: 0 };
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  /** Consecutive transient failures: the backoff's exponent. */
  private failures = 0;
  /**
   * Streams held by a refusal of their own ({@link RETRIED_REFUSALS}: one company's full quota), each with its
   * own backoff, so the others are not slowed; a stream leaves once a row of it is published or failed.
   */
  private readonly held = new Map<string, { until: number; failures: number }>();
  /** Whether the current outage was logged already (logged once, when it starts). */
  private outageLogged = false;

  constructor(
    private readonly engine: RelayEngine,
    private readonly source: OutboxSource,
    private readonly options: ResolvedRelayOptions,
    private readonly logger: Logger,
    private readonly metrics: MetricsRegistry | null,
  ) {}

  get stats(): OutboxRelayStats {
    return { ...this.counts };
  }

  start(): void {
    if (this.loop || this.abort.signal.aborted) return;
    this.loop = this.run();
  }

  close(): Promise<void> {
    this.stopping ??= (async () => {
      this.abort.abort();
      if (this.loop) {
        const finished = new AbortController();
        await Promise.race([this.loop.finally(() => finished.abort()), sleep(CLOSE_WAIT_MS, finished.signal)]);
      }
      await this.source.close?.().catch((error: unknown) => this.logger.warn("outbox source did not close cleanly", { error: messageOf(error) }));
    })();
    return this.stopping;
  }

  private async run(): Promise<void> {
    const { signal } = this.abort;
    while (!signal.aborted) {
      let transient: PublishFailure | null = null;
      /** Whether the batch moved nothing because its streams were held: the held rows are all there is. */
      let onlyHeld = false;
      try {
        const batch = await this.source.claim(this.options.batchSize, this.streamsHeld());
        if (batch && signal.aborted) {
          // A claim that waited (for a pooled connection, say) past the start of close(): nothing more is published.
          await this.giveBack(batch);
          return;
        }
        if (!batch || batch.rows.length === 0) {
          this.setLag(0);
          this.recovered();
          await this.source.wait(this.options.pollIntervalMs, signal);
          continue;
        }
        const started = performance.now();
        this.counts.batches += 1;
        this.setLag(Math.max(0, ...batch.rows.map((row) => row.ageMs ?? 0)));
        const outcome = await this.publishBatch(batch.rows);
        transient = outcome.transient;
        onlyHeld = outcome.done.length === 0 && outcome.failed.length === 0 && this.held.size > 0;
        // Rows of held streams are neither: they stay pending for a later claim.
        await batch.settle({ done: outcome.done, failed: outcome.failed });
        // Counted once settled: a batch whose settle failed is published again.
        this.counts.published += outcome.done.length;
        this.metrics?.inc("truss_outbox_published_total", undefined, outcome.done.length);
        for (const failure of outcome.failed) this.refused(failure);
        this.metrics?.observe("truss_outbox_batch_duration_seconds", undefined, secondsSince(started));
      } catch (error) {
        transient = { permanent: false, code: isTrussError(error) ? error.code : "STORE_UNAVAILABLE", message: messageOf(error) };
      }
      if (transient) await this.backOff(transient, signal);
      else this.recovered();
      // Nothing moved but held streams: wait for new rows (or the poll) rather than claiming the held rows again at once.
      if (!transient && onlyHeld) await this.source.wait(this.options.pollIntervalMs, signal);
    }
  }


  /**
   * Publishes a batch: the streams side by side, each stream's rows one after
   * the other, a stream stopping at its first transient failure.
   */
  private async publishBatch(rows: readonly OutboxRow[]): Promise<{ done: string[]; failed: OutboxFailure[]; transient: PublishFailure | null }> {
    const streams = new Map<string, OutboxRow[]>();
    for (const row of rows) {
      const key = streamOf(row);
      const run = streams.get(key);
      if (run) run.push(row);
      else streams.set(key, [row]);
    }
    const done: string[] = [];
    const failed: OutboxFailure[] = [];
    let transient: PublishFailure | null = null;
    const now = Date.now();
    // A stream whose rows went (failed, or published by another relay) leaves no hold behind for long.
    for (const [stream, hold] of this.held) if (hold.until + this.options.maxBackoffMs < now) this.held.delete(stream);
    await Promise.all(
      [...streams].map(async ([stream, run]) => {
        const hold = this.held.get(stream);
        if (hold && hold.until > now) return;
        for (const row of run) {
          if (row.unreadable) {
            failed.push({ id: row.id, code: row.unreadable.code, message: row.unreadable.message });
            continue;
          }
          try {
            await this.publish(row);
            done.push(row.id);
          } catch (error) {
            const failure = classify(error);
            if (failure.permanent) {
              failed.push({ id: row.id, code: failure.code, message: failure.message });
              continue;
            }
            this.counts.retried += 1;
            this.metrics?.inc("truss_outbox_retries_total", { code: failure.code });
            // The rest of this stream waits for this row, to keep its order: alone when the refusal is its own.
            if (RETRIED_REFUSALS.has(failure.code as ErrorCode)) this.hold(stream, hold);
            else transient ??= failure;
            return;
          }
        }
        this.held.delete(stream);
      }),
    );
    return { done, failed, transient };
  }

  /** The streams held back now, which a claim leaves out (`undefined` for none, the usual case). */
  private streamsHeld(): ReadonlySet<string> | undefined {
    if (this.held.size === 0) return undefined;
    const now = Date.now();
    const streams = new Set<string>();
    for (const [stream, hold] of this.held) if (hold.until > now) streams.add(stream);
    return streams.size > 0 ? streams : undefined;
  }

  /** Holds a stream for the next step of its own backoff. */
  private hold(stream: string, previous: { failures: number } | undefined): void {
    const failures = (previous?.failures ?? 0) + 1;
    this.held.set(stream, { until: Date.now() + this.backoffMs(failures - 1), failures });
  }

  private async publish(row: OutboxRow): Promise<void> {
    const { target, event, data } = row;
    const options = { idempotencyKey: row.idempotencyKey ?? row.id };
    switch (target?.kind) {
      case "company":
      case "topic": {
        // Refused at the outbox's call; a row that has one anyway was written around it.
        if (row.undelivered !== undefined) throw new TypeError(`outbox row ${row.id}: undelivered is for toUser messages only, not a ${target.kind} broadcast.`);
        const emitter = target.kind === "company" ? this.engine.toCompany(target.companyId) : this.engine.toTopic(target.companyId, target.topic);
        const position = await emitter.emit(event, data, options);
        // With a key the engine rejects when the store did not take it; an engine that resolves null
        // instead (one that ignores the key) did not store it either, so the row is not done.
        if (position === null) throw new TrussError("STORE_UNAVAILABLE", "the stream store did not take the broadcast");
        return;
      }
      case "user":
        await this.engine.toUser(target.companyId, target.userId).emit(event, data, row.undelivered === undefined ? options : { ...options, undelivered: row.undelivered });
        return;
      default:
        throw new TypeError(`outbox row ${row.id} has no target the relay knows (kind ${JSON.stringify((target as { kind?: unknown } | undefined)?.kind)}).`);
    }
  }

  /** Releases a batch unpublished: its rows stay pending, for the next claim of any relay. */
  private async giveBack(batch: OutboxBatch): Promise<void> {
    await batch.settle({ done: [], failed: [] }).catch((error: unknown) => this.logger.warn("outbox batch claimed during shutdown could not be given back", { error: messageOf(error) }));
  }

  /** Counts and logs (once, here) a row marked failed. */
  private refused(failure: OutboxFailure): void {
    this.counts.failed += 1;
    this.metrics?.inc("truss_outbox_failed_total", { code: failure.code });
    this.logger.error("outbox row refused for good and marked failed; the rows behind it go on", { ...failure });
  }

  private async backOff(failure: PublishFailure, signal: AbortSignal): Promise<void> {
    if (!this.outageLogged) {
      this.outageLogged = true;
      this.logger.warn("outbox relay could not publish; retrying with backoff", { code: failure.code, error: failure.message });
    }
    const delay = this.backoffMs(this.failures);
    this.failures += 1;
    await sleep(delay, signal);
  }

  /** The wait after `failures` failures in a row: doubling from `minBackoffMs` up to `maxBackoffMs`, with jitter. */
  private backoffMs(failures: number): number {
    return Math.min(this.options.maxBackoffMs, this.options.minBackoffMs * 2 ** Math.min(failures, 20)) * (0.5 + Math.random() / 2);
  }

  private recovered(): void {
    if (this.outageLogged) this.logger.warn("outbox relay publishing again");
    this.failures = 0;
    this.outageLogged = false;
  }

  private setLag(ms: number): void {
    this.counts.lagMs = ms;
    if (this.metrics) this.metrics.outboxLagSeconds = ms / 1000;
  }
}

/** The stream a row belongs to; a row without a readable target is its own stream (it fails for good). */
function streamOf(row: OutboxRow): string {
  try {
    return outboxStream(row.target);
  } catch {
    return `row:${row.id}`;
  }
}

/**
 * Refusals a client hands to its caller (their action is `reject`) that the
 * relay retries instead: the store refuses for what it holds now (a full
 * quota frees as messages expire or are read), not for the row. A relay has
 * no caller to hand them to, and failing the row would let the rows behind
 * it go first.
 */
const RETRIED_REFUSALS: ReadonlySet<ErrorCode> = new Set(["QUOTA_EXCEEDED"]);

/**
 * Whether the engine would refuse the same publish again: a TrussError whose
 * code a client would not retry (`ERROR_ACTIONS`) and that is not one of the
 * {@link RETRIED_REFUSALS}, or a TypeError (an id, a topic name or an event
 * the engine does not take). Anything else (a store down, a full quota, the
 * engine not attached yet) is transient.
 */
function classify(error: unknown): PublishFailure {
  const message = withCause(error);
  if (isTrussError(error) && (ERROR_CODES as readonly string[]).includes(error.code)) {
    return { permanent: !isRetryable(errorAction(error.code)) && !RETRIED_REFUSALS.has(error.code), code: error.code, message };
  }
  if (error instanceof TypeError) return { permanent: true, code: "INVALID_PAYLOAD", message };
  return { permanent: false, code: "INTERNAL_ERROR", message };
}

/**
 * An error's message followed by its cause's, for the failed row and the
 * relay's logs, which only operators read: a store keeps the database's own
 * words (a PostgreSQL refusal, a driver's error) in `cause`, out of the
 * message clients are sent.
 */
function withCause(error: unknown): string {
  const cause: unknown = error instanceof Error ? error.cause : undefined;
  return cause === undefined ? messageOf(error) : `${messageOf(error)} (cause: ${messageOf(cause)})`;
}

/** Resolves after `ms`, or at once when `signal` aborts; the timer never keeps the process alive. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    timer.unref?.();
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
