import { checkPositiveIntegers } from "../kernel/store-options.js";
import { methodsOf } from "../kernel/contract.js";

/**
 * Addresses one stream: a company's broadcasts (`stream: "company"`) or one
 * topic of a company (`stream: "topic:<name>"`). Streams are per company:
 * two tenants that name a topic alike never share a stream, whatever
 * characters the ids contain.
 */
export interface StreamKey {
  /** The tenant. */
  companyId: string;
  /** The stream within the tenant: `company`, or `topic:` and the topic name. */
  stream: string;
}

/** One broadcast as a stream keeps it. */
export interface StreamEntry {
  /** Its place in the stream: 1 for the first entry of an epoch, then +1 per entry, with no gaps. */
  offset: number;
  /** The application event name. */
  event: string;
  /** The event's data (JSON; the engine checks it before appending). */
  data: unknown;
  /** When it was appended, epoch ms. */
  ts: number;
}

/** Why a stream cannot fill a gap from a given offset. */
export type StreamGapReason = "HISTORY_TRIMMED" | "HISTORY_EXPIRED";

/** What {@link StreamStore.read} found after an offset. */
export interface StreamRead {
  /**
   * The stream's current epoch: an id that changes whenever the stream's
   * history was lost (a store restarted empty, a stream that expired
   * entirely). Offsets of different epochs are unrelated.
   */
  epoch: string;
  /** The last offset appended in this epoch (0 when nothing was). */
  top: number;
  /** Up to `limit` entries after `after`, oldest first, contiguous. */
  entries: StreamEntry[];
  /**
   * Set when entries right after `after` are gone (so `entries` does not
   * start at `after + 1`): dropped by the size cap (`HISTORY_TRIMMED`) or by
   * the TTL (`HISTORY_EXPIRED`). `null` when nothing is missing.
   */
  gap: StreamGapReason | null;
}

/** Totals of what the size cap and the TTL dropped, for `metrics()`. */
export interface StreamTrimStats {
  /** Entries dropped because their stream was over its size cap. */
  trimmed: number;
  /** Entries dropped because they were older than the TTL. */
  expired: number;
}

/**
 * A bounded history per stream, so a device that was away gets what it
 * missed. `append` assigns the next offset and stores the entry in one atomic
 * step: offsets of one stream are contiguous and ordered even when several
 * engine nodes append at once, and an entry whose append resolved can be read
 * until the size cap or the TTL drops it (counted, never silent).
 *
 * The entries `append` and `read` hand out are new objects, so a caller
 * changing one changes nothing stored; their `data` may be the very value
 * appended (the engine never changes it).
 */
export interface StreamStore {
  /**
   * Appends an entry with the stream's next offset and resolves with it, the
   * epoch and `duplicate: false`. Starts a new epoch when the stream has no
   * history at all (its first append, or after a store restart). Applies the
   * size cap and TTL. Rejects (nothing stored) when the store is unreachable.
   *
   * With `options.idempotencyKey`, the append is idempotent per stream
   * (company and stream name): if the same key was appended to the same
   * stream within the TTL, nothing is stored and it resolves with the first
   * entry's epoch and offset and `duplicate: true`. The key is looked up in
   * the same atomic step that assigns the offset, so two appends with one key
   * at once (from two engine nodes) store one entry. A store remembers a key
   * for `ttlMs` from the first entry's `ts`, and a stream's newest
   * {@link STREAM_IDEMPOTENCY_KEYS_PER_ENTRY} × `size` keys, forgetting older
   * ones first; a forgotten key is a new key. A key never outlives its epoch:
   * a stream that starts a new epoch starts with no keys. When the first
   * entry was already dropped (size cap) but its key is remembered, the
   * result is still a duplicate whose entry has the first offset and `ts`
   * with this call's `event` and `data`. Without a key nothing is remembered.
   *
   * @throws TypeError (as a rejection, nothing stored) when
   * `options.idempotencyKey` is present but not an idempotency key
   * (`isIdempotencyKey`).
   */
  append(key: StreamKey, event: string, data: unknown, options?: StreamAppendOptions): Promise<StreamAppendResult>;
  /**
   * Entries with an offset greater than `after`, oldest first, at most
   * `limit`, with the stream's epoch and top offset. For a stream that never
   * had an entry (or lost them all, store restarted), resolves with a fresh
   * epoch, `top: 0` and no entries; the epoch must then stay the one the next
   * `append` uses.
   */
  read(key: StreamKey, after: number, limit: number): Promise<StreamRead>;
  /** Totals of what the size cap and the TTL have dropped since the store was created. */
  trimmed(): Promise<StreamTrimStats>;
  /** Rejects when the store cannot be reached; used by `engine.health()`. Optional. */
  ping?(): Promise<void>;
}

/** Options of one {@link StreamStore.append}. */
export interface StreamAppendOptions {
  /**
   * Makes the append idempotent for this stream: a repeat with the same key
   * within the TTL stores nothing and resolves with the first entry's
   * position. A non-empty string of well-formed Unicode, at most 200
   * characters (`MAX_IDEMPOTENCY_KEY_LENGTH`).
   */
  idempotencyKey?: string;
}

/** What {@link StreamStore.append} resolves with. */
export interface StreamAppendResult {
  /** The stream's epoch; for a duplicate, the first entry's (the same, since keys never outlive their epoch). */
  epoch: string;
  /**
   * The stored entry; for a duplicate, the first entry stored with the key
   * (its offset and ts, and its event and data unless the size cap dropped it).
   */
  entry: StreamEntry;
  /** Whether the key was already used on this stream, so nothing was stored. */
  duplicate: boolean;
}

/**
 * How many idempotency keys a stream store remembers per stream, as a
 * multiple of its `size`: at most `10 × size`, the oldest forgotten first.
 */
export const STREAM_IDEMPOTENCY_KEYS_PER_ENTRY = 10;

/** The methods every {@link StreamStore} must have; `createRealtimeEngine` refuses a store without one of them. */
export const STREAM_STORE_METHODS = methodsOf<StreamStore>({ append: true, read: true, trimmed: true });

/** Options every stream store accepts. */
export interface StreamStoreOptions {
  /** How many entries each stream keeps; the oldest go first. Default 1,000. */
  size?: number;
  /** How long an entry is kept, in ms. Default 10 minutes. */
  ttlMs?: number;
  /**
   * How long a stream is remembered after its last append or read once its
   * entries have all expired, in ms; after it the stream starts a new epoch.
   * Default one hour (`DEFAULTS.recovery.idleMs`).
   */
  idleMs?: number;
}

/** Default entries kept per stream. */
export const DEFAULT_STREAM_SIZE = 1000;
/** Default time an entry is kept: 10 minutes, longer than a site phone's usual drop-out. */
export const DEFAULT_STREAM_TTL_MS = 10 * 60 * 1000;

/**
 * How long an idle stream outlives its last entry by default: one hour. Until
 * then a device that reconnects to a quiet stream keeps its epoch and needs
 * no resync; after it the stream is forgotten and starts a new epoch.
 */
export const DEFAULT_STREAM_IDLE_MS = 60 * 60 * 1000;

/**
 * A stream store's options with their defaults applied and checked, for
 * implementations (the memory and Redis stores use it).
 *
 * @param store - the store's name, for the error.
 * @throws RangeError when `size`, `ttlMs` or `idleMs` is not a positive integer.
 */
export function resolveStreamStoreOptions(store: string, options: StreamStoreOptions): Required<StreamStoreOptions> {
  return checkPositiveIntegers(store, {
    size: options.size ?? DEFAULT_STREAM_SIZE,
    ttlMs: options.ttlMs ?? DEFAULT_STREAM_TTL_MS,
    idleMs: options.idleMs ?? DEFAULT_STREAM_IDLE_MS,
  });
}
