import { isTopicName } from "@truss/protocol";
import { assertApplicationEvent } from "../kernel/events.js";
import { idempotencyKeyOf } from "../kernel/idempotency.js";
import { checkedJson } from "../kernel/payload.js";
import { assertIds } from "../kernel/payload.js";
import { undeliveredChoiceOf, type UndeliveredChoice } from "../undelivered/options.js";
import type { OutboxTarget } from "./source.js";

/** The limits an outbox checks data against at the call: the engine's `limits.maxDepth` and `limits.maxMessageBytes`. */
export interface OutboxLimits {
  /** Deepest nesting of objects and arrays. Default: the engine's, `DEFAULTS.limits.maxDepth`. */
  maxDepth?: number;
  /** Largest data, in bytes of its JSON. Default: the engine's, `DEFAULTS.limits.maxMessageBytes`. */
  maxMessageBytes?: number;
}

/** The options of an outbox emit: those of the engine's emitters. */
export interface OutboxEmitOptions {
  /**
   * Publishes once across rows that repeat it (within the stream's or the
   * inbox's TTL), as the engine's `idempotencyKey` does. Without it, the
   * row's own id is the key, so a row relayed twice still publishes once.
   */
  idempotencyKey?: string;
}

/** The options of an outbox `toUser(...).emit`: those of the engine's `toUser(...).emit`. */
export interface OutboxUserEmitOptions extends OutboxEmitOptions {
  /**
   * Whether, and after how long, the engine's `undelivered` handler is
   * called if no device of the user acknowledges the message: `false` for
   * never, `{ afterMs }` for this delay, as the engine's own `toUser` send
   * takes it. Checked at the call, stored with the row and handed to the
   * engine by the relay; without it, the engine's `undelivered.events` and
   * `afterMs` decide. A `{ afterMs }` row relayed by an engine without the
   * `undelivered` option is refused by it and marked failed.
   */
  undelivered?: UndeliveredChoice;
}

/** One row to write, checked at the application's call. */
export interface OutboxEntry {
  /** Where it goes. */
  readonly target: OutboxTarget;
  /** The key of the stream the row belongs to, for ordering: `company:<id>`, `topic:<id>:<topic>` or `user:<id>:<user>` (ids JSON-quoted). */
  readonly stream: string;
  /** The application event name. */
  readonly event: string;
  /** The data as JSON text; `null` for `undefined`. */
  readonly json: string | null;
  /** The application's idempotency key, if it gave one. */
  readonly idempotencyKey: string | undefined;
  /** The application's `undelivered` choice, copied (`toUser` rows only), if it gave one. */
  readonly undelivered: UndeliveredChoice | undefined;
}

/**
 * Checks an outbox emit the way the engine checks the same emit, at the
 * call, inside the application's transaction: a row the engine would refuse
 * never reaches the table, and the data is copied as it is now.
 *
 * @throws TypeError for an id that is not a non-empty string of well-formed Unicode, a
 * topic that is not a topic name, an event name the engine does not take
 * (see `assertApplicationEvent`: a Truss protocol event, past 200
 * characters, a lone surrogate), malformed options,
 * or `undelivered` on a company or topic row (it is for `toUser` only).
 * @throws TrussError `INVALID_PAYLOAD` (not JSON, nested too deep) or
 * `PAYLOAD_TOO_LARGE`.
 */
export function outboxEntry(
  target: OutboxTarget,
  event: string,
  data: unknown,
  options: OutboxUserEmitOptions | undefined,
  limits: Required<OutboxLimits>,
): OutboxEntry {
  const call = `outbox ${target.kind === "company" ? "toCompany" : target.kind === "topic" ? "toTopic" : "toUser"}(...).emit`;
  assertIds(call, target.kind === "user" ? { companyId: target.companyId, userId: target.userId } : { companyId: target.companyId });
  if (target.kind === "topic" && !isTopicName(target.topic)) {
    throw new TypeError(`${call}: ${JSON.stringify(target.topic)} is not a topic name (letters, digits, _ . @ - in parts joined by : or /).`);
  }
  assertApplicationEvent(event, call);
  const idempotencyKey = idempotencyKeyOf(options, call);
  const undelivered = undeliveredChoiceOf(options?.undelivered, call);
  if (undelivered !== undefined && target.kind !== "user") {
    throw new TypeError(`${call}: options.undelivered is for toUser messages only; a ${target.kind} broadcast is not kept per user, so it has no undelivered call.`);
  }
  const json = checkedJson(data, { maxDepth: limits.maxDepth, maxBytes: limits.maxMessageBytes }, `${call} data for "${event}"`);
  return { target, stream: outboxStream(target), event, json: json ?? null, idempotencyKey, undelivered };
}

/** The key of a target's stream: rows with the same key are published in order. */
export function outboxStream(target: OutboxTarget): string {
  const company = JSON.stringify(target.companyId);
  if (target.kind === "company") return `company:${company}`;
  if (target.kind === "topic") return `topic:${company}:${target.topic}`;
  return `user:${company}:${JSON.stringify(target.userId)}`;
}
