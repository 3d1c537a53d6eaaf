/** A message in a user's inbox, as delivered in `inbox:message`. */
export interface InboxMessage<TData = unknown> {
  /**
   * Unique within the user's inbox and increasing in append order, in the form
   * `<epoch ms>-<sequence>` (a Redis Stream id). Compare with `compareInboxIds`.
   */
  id: string;
  /** The application event name, e.g. `expense:approved`. */
  event: string;
  /** The event's payload, JSON-serialisable. */
  data: TData;
  /** When the message was appended, epoch ms. */
  ts: number;
}

/** What one `trim` or append dropped, for `metrics()`. */
export interface InboxDropStats {
  /** Messages dropped because they were older than the TTL. */
  expired: number;
  /** Messages dropped because the inbox was over its length cap. */
  overCap: number;
}

/**
 * A durable, per-user message log with a read cursor for each device. The
 * engine appends before it pushes, so a message whose append resolved is never
 * lost short of its TTL or the cap; what those drop is counted, never silent.
 */
export interface Inbox {
  /**
   * Appends a message and resolves with it (id and ts assigned) once it is
   * durably stored. Applies the length cap; rejects (nothing stored) when the
   * store is unreachable.
   */
  append(userId: string, event: string, data: unknown): Promise<InboxMessage>;
  /**
   * Up to `limit` unexpired messages with an id greater than `afterId` (all
   * when `afterId` is `null`), oldest first.
   */
  read(userId: string, afterId: string | null, limit: number): Promise<InboxMessage[]>;
  /** Moves the device's cursor forward to `id`; never moves it back. */
  ack(userId: string, deviceId: string, id: string): Promise<void>;
  /** The last id the device acknowledged, or `null` if it never did. */
  cursor(userId: string, deviceId: string): Promise<string | null>;
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

/** Default inbox TTL: 24 hours. */
export const DEFAULT_INBOX_TTL_MS = 24 * 60 * 60 * 1000;
/** Default inbox length cap: 1,000 messages a user. */
export const DEFAULT_INBOX_MAX_LENGTH = 1000;

/**
 * Orders two inbox ids (`<ms>-<seq>`): negative when `a` is older, positive
 * when newer, 0 when equal.
 */
export function compareInboxIds(a: string, b: string): number {
  const [aMs = "0", aSeq = "0"] = a.split("-");
  const [bMs = "0", bSeq = "0"] = b.split("-");
  const byMs = Number(aMs) - Number(bMs);
  return byMs !== 0 ? byMs : Number(aSeq) - Number(bSeq);
}
