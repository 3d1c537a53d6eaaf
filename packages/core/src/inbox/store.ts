import type { InboxMessage } from "@truss/protocol";
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
  /** Moves the device's cursor forward to `id`; never moves it back. */
  ack(device: DeviceRef, id: string): Promise<void>;
  /** The last id the device acknowledged, or `null` if it never did. */
  cursor(device: DeviceRef): Promise<string | null>;
  /** Totals of what TTL and the cap have dropped since the store was created. */
  dropped(): Promise<InboxDropStats>;
  /** Rejects when the store cannot be reached; used by `engine.health()`. Optional. */
  ping?(): Promise<void>;
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

/** Options every inbox implementation accepts. */
export interface InboxOptions {
  /** How long a message is kept, in ms. Default 24 hours. */
  ttlMs?: number;
  /** How many messages a user's inbox keeps; the oldest go first. Default 1,000. */
  maxLength?: number;
}

/** Default inbox TTL: 24 hours. */
export const DEFAULT_INBOX_TTL_MS = 24 * 60 * 60 * 1000;
/** Default inbox length cap: 1,000 messages a user. */
export const DEFAULT_INBOX_MAX_LENGTH = 1000;

/**
 * How many idempotency keys a store remembers per user, as a multiple of its
 * `maxLength`: at most `10 × maxLength`, the oldest forgotten first.
 */
export const INBOX_IDEMPOTENCY_KEYS_PER_MESSAGE = 10;
