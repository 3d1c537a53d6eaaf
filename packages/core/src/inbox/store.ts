import type { InboxMessage } from "@truss/protocol";
import type { DeviceRef } from "../presence/store.js";

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
   */
  append(user: UserKey, event: string, data: unknown): Promise<InboxMessage>;
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

/** Options every inbox implementation accepts. */
export interface InboxOptions {
  /** How long a message is kept, in ms. Default 24 hours. */
  ttlMs?: number;
  /** How many messages a user's inbox keeps; the oldest go first. Default 1,000. */
  maxLength?: number;
}

/**
 * The former name of {@link InboxStore}.
 *
 * @deprecated Use `InboxStore`; its methods take a {@link UserKey} or a `DeviceRef` instead of a bare user id.
 */
export type Inbox = InboxStore;

/** Default inbox TTL: 24 hours. */
export const DEFAULT_INBOX_TTL_MS = 24 * 60 * 60 * 1000;
/** Default inbox length cap: 1,000 messages a user. */
export const DEFAULT_INBOX_MAX_LENGTH = 1000;
