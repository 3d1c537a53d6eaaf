import { isInboxId, type InboxMessage } from "@truss/protocol";
import type { DeviceRef } from "../presence/store.js";
import { methodsOf } from "../kernel/contract.js";

export type { InboxMessage } from "@truss/protocol";
export { compareInboxIds, isInboxId } from "@truss/protocol";

/** What one `trim` or append dropped, for `metrics()`. */
export interface InboxDropStats {
  /** Messages dropped because they were older than the TTL. */
  expired: number;
  /** Messages dropped because the inbox was over its length cap. */
  overCap: number;
}

/**
 * Addresses one user of one company. Every inbox is per company and user:
 * two tenants that number their users alike never share an inbox.
 */
export interface UserKey {
  /** The tenant. */
  companyId: string;
  /** The user within the tenant. */
  userId: string;
}

/**
 * A durable, per-user message log with a read cursor for each device. The
 * engine appends before it pushes, so a message whose append resolved is never
 * lost short of its TTL or the cap; what those drop is counted, never silent.
 *
 * Users are addressed by company and user id together; an implementation must
 * keep `{ companyId: "a", userId: "1" }` and `{ companyId: "b", userId: "1" }`
 * apart, whatever characters the ids contain.
 *
 * Messages are copied in and out: a caller changing the data it appended, or
 * a message that `append` or `read` handed it, changes nothing the store holds.
 */
export interface InboxStore {
  /**
   * Appends a message and resolves with it (id and ts assigned) once it is
   * durably stored. Applies the length cap; rejects (nothing stored) when the
   * store is unreachable. `data` is JSON: the engine checks it before calling.
   *
   * With `options.idempotencyKey`, the append is idempotent per user (company
   * and user): if the same key was appended for the same user within the TTL,
   * nothing is stored and it resolves with the first message and
   * `duplicate: true`. The check and the append are one atomic step, so two
   * appends with the same key at once (from two engine nodes) store one
   * message. A store remembers a key for the TTL, counted from the first
   * message's `ts`, and keeps a user's newest
   * {@link INBOX_IDEMPOTENCY_KEYS_PER_MESSAGE} × `maxLength` keys, forgetting
   * older ones first (so the memory a user's keys take is bounded); a
   * forgotten key is a new key. When the length cap has already dropped the
   * first message but its key is remembered, the result is still a duplicate
   * and its message carries the first id and ts with this call's `event` and
   * `data` (what was stored is gone). Without a key nothing is remembered.
   *
   * @throws TypeError when `options.idempotencyKey` is present but not an
   * idempotency key (`isIdempotencyKey`).
   */
  append(user: UserKey, event: string, data: unknown, options?: InboxAppendOptions): Promise<InboxAppendResult>;
  /**
   * Up to `limit` unexpired messages with an id greater than `afterId` (all
   * when `afterId` is `null`), oldest first.
   */
  read(user: UserKey, afterId: string | null, limit: number): Promise<InboxMessage[]>;
  /**
   * Moves the device's cursor forward to `id`; never moves it back. Cancels
   * the user's undelivered calls of messages up to `id`, whichever device
   * acknowledged them. A user keeps at most `maxCursorsPerUser` cursors:
   * past it the one moved longest ago is forgotten, so its device reads
   * from the start again (`cursor` is `null`).
   */
  ack(device: DeviceRef, id: string): Promise<void>;
  /**
   * The last id the device acknowledged, or `null` if it never did or the
   * store forgot it: past `maxCursorsPerUser`, or once every message up to
   * it is past the TTL. A cursor forgotten then changes nothing the device
   * reads: `read` from `null` returns the same kept messages.
   */
  cursor(device: DeviceRef): Promise<string | null>;
  /** Totals of what TTL and the cap have dropped since the store was created. */
  dropped(): Promise<InboxDropStats>;
  /** Rejects when the store cannot be reached; used by `engine.health()`. Optional. */
  ping?(): Promise<void>;
  /**
   * Takes up to `limit` undelivered calls that are due (see
   * {@link InboxAppendOptions.undeliveredAfterMs}) and leases each for
   * `leaseMs`, in one atomic step per call: two claimers, on this node or
   * another, never both get one call within its lease. Each claim counts an
   * attempt. A lease that runs out without {@link settleUndelivered} makes
   * the call due again for any claimer, so the handler runs at least once.
   * Calls of messages the TTL or the length cap dropped are dropped with
   * them and never claimed. Optional: the engine's `undelivered` option
   * needs it (with `settleUndelivered`), and refuses a store without it.
   */
  claimUndelivered?(limit: number, leaseMs: number): Promise<UndeliveredClaim[]>;
  /**
   * Ends a claim: `"done"` forgets the call (the handler took it, or it was
   * given up); `{ retryAfterMs }` makes it due again that long from now.
   * Does nothing when the claim is stale (its lease ran out and another
   * claim took the call, or an ack cancelled it).
   */
  settleUndelivered?(claim: UndeliveredClaim, outcome: UndeliveredOutcome): Promise<void>;
}

/**
 * A due undelivered call taken by {@link InboxStore.claimUndelivered}: the
 * message no device of the user acknowledged, and which attempt this is
 * (1 for the first claim; the attempt also tells a stale settle apart).
 */
export interface UndeliveredClaim {
  /** The user the message was sent to. */
  user: UserKey;
  /** The stored message, as `read` returns it. */
  message: InboxMessage;
  /** How many times the call has been claimed, this claim included. */
  attempt: number;
}

/** How a claim ends: forgotten (`"done"`), or due again after `retryAfterMs`. */
export type UndeliveredOutcome = "done" | { retryAfterMs: number };

/** Whether a store can hold undelivered calls (`claimUndelivered` and `settleUndelivered`). */
export function hasUndeliveredCalls(store: InboxStore): store is InboxStore & Required<Pick<InboxStore, "claimUndelivered" | "settleUndelivered">> {
  return typeof store.claimUndelivered === "function" && typeof store.settleUndelivered === "function";
}

/** The methods every {@link InboxStore} must have; `createRealtimeEngine` refuses a store without one of them. */
export const INBOX_STORE_METHODS = methodsOf<InboxStore>({ append: true, read: true, ack: true, cursor: true, dropped: true });

/** Options of one {@link InboxStore.append}. */
export interface InboxAppendOptions {
  /**
   * Makes the append idempotent for this user: a repeat with the same key
   * within the TTL stores nothing and resolves with the first message. A
   * non-empty string of well-formed Unicode, at most
   * `MAX_IDEMPOTENCY_KEY_LENGTH` characters.
   */
  idempotencyKey?: string;
  /**
   * Records an undelivered call for the message, due this many ms after its
   * `ts` (by the store's clock), in the same atomic step as the append. An
   * `ack` by any device of the user that covers the message cancels it; the
   * message leaving the inbox (TTL, cap) drops it. A duplicate append
   * records nothing new. Only for stores with `claimUndelivered`; others
   * ignore it. A positive integer.
   */
  undeliveredAfterMs?: number;
}

/** What {@link InboxStore.append} resolves with. */
export interface InboxAppendResult {
  /**
   * The stored message; for a duplicate, the first message stored with the
   * key (its id and ts, and its event and data unless the cap dropped it).
   */
  message: InboxMessage;
  /** Whether the key was already used for this user, so nothing was stored. */
  duplicate: boolean;
}

/*
 * What the engine checks of what a store or another node hands it back before
 * it uses it: enough of the shape that one outside the contract is refused
 * where it comes in, not a TypeError wherever the engine first reads it.
 */

/** A user: a company and a user id. */
export function isUserKey(value: unknown): value is UserKey {
  const user = value as Partial<UserKey> | null;
  return typeof user === "object" && user !== null && typeof user.companyId === "string" && typeof user.userId === "string";
}

/** A stored message: an inbox id, an event name and a time. */
export function isStoredMessage(value: unknown): value is InboxMessage {
  const message = value as Partial<InboxMessage> | null;
  return typeof message === "object" && message !== null && isInboxId(message.id) && typeof message.event === "string" && typeof message.ts === "number";
}

/** `append`'s answer (`storeCall`'s `answers`): a stored message, and whether it was a duplicate. */
export function isAppendResult(answer: unknown): answer is InboxAppendResult {
  if (typeof answer !== "object" || answer === null) return false;
  const { message, duplicate } = answer as Partial<InboxAppendResult>;
  return isStoredMessage(message) && typeof duplicate === "boolean";
}

/** Options every inbox implementation accepts. */
export interface InboxOptions {
  /** How long a message is kept, in ms. Default 24 hours. */
  ttlMs?: number;
  /** How many messages a user's inbox keeps; the oldest go first. Default 1,000. */
  maxLength?: number;
  /**
   * How many devices' cursors one user's inbox keeps. Past it the cursor
   * moved longest ago is forgotten: that device is then sent the kept
   * messages again (same ids, which `@truss/client` drops), so cycling
   * device ids cannot grow the store without bound.
   *
   * @default 100
   */
  maxCursorsPerUser?: number;
}

/** Default inbox TTL: 24 hours. */
export const DEFAULT_INBOX_TTL_MS = 24 * 60 * 60 * 1000;
/** Default inbox length cap: 1,000 messages a user. */
export const DEFAULT_INBOX_MAX_LENGTH = 1000;
/** Default device cursors kept per user: 100. */
export const DEFAULT_INBOX_MAX_CURSORS_PER_USER = 100;

/**
 * How many idempotency keys a store remembers per user, as a multiple of its
 * `maxLength`: at most `10 × maxLength`, the oldest forgotten first.
 */
export const INBOX_IDEMPOTENCY_KEYS_PER_MESSAGE = 10;

/**
 * The `undeliveredAfterMs` of append options: a positive safe integer, or
 * `undefined`.
 *
 * @throws TypeError otherwise, naming `store`.
 */
export function undeliveredAfterMsOf(options: { undeliveredAfterMs?: number } | undefined, store: string): number | undefined {
  const afterMs = options?.undeliveredAfterMs;
  if (afterMs === undefined) return undefined;
  if (!(Number.isSafeInteger(afterMs) && afterMs > 0)) throw new TypeError(`${store}: undeliveredAfterMs must be a positive integer of ms, got ${String(afterMs)}`);
  return afterMs;
}
