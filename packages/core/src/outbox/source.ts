/**
 * The contract between the relay, which lives once in `@truss/core`, and an
 * outbox table in a database (`@truss/postgres`, or an application's own
 * SQLite table). A source hands out batches of committed rows; the relay
 * publishes them through the engine and tells the batch how each one ended.
 */

import type { UndeliveredChoice } from "../undelivered/options.js";
import type { outboxStream } from "./entry.js";

/** Where one outbox row is published: the same three targets as the engine's emitters. */
export type OutboxTarget =
  | { readonly kind: "company"; readonly companyId: string }
  | { readonly kind: "topic"; readonly companyId: string; readonly topic: string }
  | { readonly kind: "user"; readonly companyId: string; readonly userId: string };

/** One committed row waiting to be published. */
export interface OutboxRow {
  /** The row's id in its table, unique there; the publish's idempotency key when the row has none of its own. */
  readonly id: string;
  /** Where it goes. */
  readonly target: OutboxTarget;
  /** The application event name. */
  readonly event: string;
  /** The event's data, as parsed from the stored JSON (`undefined` for none). */
  readonly data: unknown;
  /** The key the application gave at the call, which publishes once across rows that repeat it. */
  readonly idempotencyKey?: string;
  /**
   * The `undelivered` choice the application gave at the call (`toUser`
   * rows only), handed to the engine's `toUser(...).emit`. A source that
   * does not store one leaves it out: the engine's `undelivered.events` and
   * `afterMs` then decide.
   */
  readonly undelivered?: UndeliveredChoice;
  /** How long ago the row was written, in ms, by the database's clock: feeds the relay's lag gauge. */
  readonly ageMs?: number;
  /**
   * Set by a source for a row it would not read (its data past what the
   * source reads of one row, written around the API's own checks): the
   * relay marks it failed with this code and message, as it does a row the
   * engine refuses for good, and never publishes it.
   */
  readonly unreadable?: { readonly code: string; readonly message: string };
}

/** How one row of a batch ended for good. */
export interface OutboxFailure {
  /** The row's id. */
  readonly id: string;
  /** The engine's error code (`PAYLOAD_TOO_LARGE`, `INVALID_PAYLOAD`, ...). */
  readonly code: string;
  /** The engine's message and its cause's (a store's or driver's own words), for the operator who looks at the row. */
  readonly message: string;
}

/** What the relay did with a batch, handed back to {@link OutboxBatch.settle}. */
export interface OutboxOutcome {
  /** Rows published: remove them. */
  readonly done: readonly string[];
  /** Rows the engine refused for good: keep them, marked failed, and never hand them out again. */
  readonly failed: readonly OutboxFailure[];
}

/**
 * Rows claimed by one relay. While a batch is open no other relay can claim
 * any row of the streams it holds, so the rows of one stream are published
 * by one relay at a time, in order. Rows neither done nor failed go back to
 * the table as they were, to be claimed again.
 */
export interface OutboxBatch {
  /** The rows, oldest first; the rows of one stream are a contiguous run of that stream's oldest pending rows. */
  readonly rows: readonly OutboxRow[];
  /**
   * Records the outcome and releases the claim, in one step: either all of
   * it is recorded or none (the rows are then claimed and published again,
   * which the idempotency keys make harmless).
   */
  settle(outcome: OutboxOutcome): Promise<void>;
}

/** An outbox table, as the relay sees it. */
export interface OutboxSource {
  /**
   * Claims up to `limit` pending rows, oldest first, whole runs of each
   * stream it takes; `null` or no rows when nothing is pending (or every
   * pending stream is held by another relay). Rejects when the database
   * cannot be reached; the relay retries with backoff.
   *
   * `skip` names the streams (as {@link outboxStream} names them) this relay
   * holds back for now, after a refusal of their own (a company's full
   * inbox quota): leave their rows out, so the batch fills with the other
   * streams' rows. A source that ignores it still works, but then `limit`
   * streams held at once fill every batch, and no other stream moves.
   */
  claim(limit: number, skip?: ReadonlySet<string>): Promise<OutboxBatch | null>;
  /**
   * Resolves when rows may be pending: a wake-up from the database (a
   * NOTIFY), `timeoutMs` passing (the poll that catches a lost wake-up), or
   * `signal` aborting. Never rejects.
   */
  wait(timeoutMs: number, signal: AbortSignal): Promise<void>;
  /** Stops listening for wake-ups; called once when the relay stops. */
  close?(): Promise<void>;
}
