import { removeOldest } from "../kernel/bounded-logs.js";
import { snapshotJson } from "../kernel/payload.js";
import { randomUUID } from "node:crypto";
import {
  resolveStreamStoreOptions,
  STREAM_IDEMPOTENCY_KEYS_PER_ENTRY,
  type StreamEntry,
  type StreamGapReason,
  type StreamKey,
  type StreamStore,
  type StreamStoreOptions,
  type StreamTrimStats,
} from "./store.js";
import { checkPositiveIntegers, DEFAULT_MEMORY_BYTES_PER_COMPANY } from "../kernel/store-options.js";
import { idempotencyKeyOf } from "../kernel/idempotency.js";
import { markInProcess } from "../kernel/in-process.js";

/** Options of {@link memoryStreamStore}. */
export interface MemoryStreamStoreOptions extends StreamStoreOptions {
  /**
   * How many bytes one company's streams keep together: their entries (event
   * name and data as JSON) and, for each stream the store holds, its name
   * plus 900 bytes. Past it the streams that keep
   * no entry go first, the least recently appended to or read first (a
   * device holding such a stream's epoch gets an `EPOCH_CHANGED` resync),
   * then the company's oldest entries, across its streams, as the size cap
   * would drop them (a device that needed one gets a `HISTORY_TRIMMED`
   * resync); the broadcast itself is never refused.
   *
   * @default 67108864 (64 MiB)
   */
  maxBytesPerCompany?: number;
  /** Clock in epoch ms, for tests. Default `Date.now`. */
  now?: () => number;
}

/**
 * What the company's bytes count for each stream the store holds, on top of
 * its name: its record, epoch and maps. A little over what V8 (Node 20,
 * 64-bit) was measured to keep for a stream that was read and never
 * appended to (about 900 bytes with its name), measured once, not per call.
 * Every `topic:subscribe` reads its stream, so without it a user
 * subscribing to ever new topics grew the store outside every cap.
 */
export const STREAM_RECORD_OVERHEAD_BYTES = 900;

interface StreamRecord {
  /** The stream's name: the key it is kept under in its company's maps. */
  stream: string;
  epoch: string;
  /** Oldest first; the last one has offset `top`, and offsets are contiguous. */
  entries: StreamEntry[];
  /** Size of each of `entries`, in step with it. */
  sizes: number[];
  /** The last offset handed out in this epoch. */
  top: number;
  /** The highest offset the size cap dropped (0 when none). */
  trimmedTo: number;
  /** The highest offset the TTL dropped (0 when none). */
  expiredTo: number;
  /** The last append or read, epoch ms: what the idle clock counts from. */
  touchedAt: number;
  /**
   * Idempotency key → the offset and ts of the first entry appended with it.
   * Insertion order is age order (a key is re-inserted only after it was
   * forgotten, and ts never decreases along the stream), so the oldest keys
   * are dropped from the front.
   */
  keys: Map<string, { offset: number; ts: number }>;
}

/** One company's streams, and their entries in the order they were appended, for its byte cap. */
interface CompanyStreams {
  streams: Map<string, StreamRecord>;
  /**
   * The streams that keep no entry, the least recently touched first: what goes first past
   * `maxBytesPerCompany`, since forgetting one loses no history, only its epoch.
   */
  empty: Map<string, StreamRecord>;
  /** Bytes of every kept entry of the company, and of every stream it holds ({@link recordBytes}). */
  bytes: number;
  /** How many entries the company keeps. */
  count: number;
  /**
   * Every entry appended, oldest first, from `appendedStart` on: what goes
   * first past `maxBytesPerCompany`. Entries the TTL or the size cap already
   * dropped are skipped, and swept out once they outnumber the kept ones.
   */
  appended: Array<{ record: StreamRecord; offset: number }>;
  appendedStart: number;
}

/**
 * The in-memory stream store, the engine's default for a single node. History
 * lives only as long as the process: after a restart every stream starts a new
 * epoch, and reconnecting devices resync.
 *
 * Data is kept as given, not copied (the engine checks it is JSON before it
 * appends, and never changes it afterwards); entries handed out are new
 * objects around the same data. Expiry is applied lazily, when a stream is
 * appended to or read, by `trimmed()`, and by a sweep of every stream that
 * runs at most once per `min(ttlMs, idleMs)` during those calls, so no timer
 * keeps the process alive.
 *
 * A stream whose entries have all expired is forgotten `idleMs` after its
 * last append or read, and its epoch with it: a later read or append starts
 * a new epoch at offset 1, which a device still holding the old epoch sees as
 * `EPOCH_CHANGED`. Without this a process would keep one record for every
 * topic that ever had a broadcast.
 *
 * `gap` names why the entry right after `after` went. Only the highest offset
 * each of the size cap and the TTL dropped is remembered, so the reason is
 * exact while the two took turns at most once (the usual case) and otherwise
 * names the one that dropped the older run.
 *
 * Each company's streams keep at most `maxBytesPerCompany` bytes together,
 * counting each stream the store holds (even one only read, as every
 * `topic:subscribe` does) as well as its entries: past it the streams with
 * no entry are forgotten first, least recently touched first, then its
 * oldest entries are dropped, so neither a company broadcasting on many
 * topics nor a user subscribing to ever new ones can hold more than that.
 *
 * Idempotency keys are kept per stream beside its entries: each for `ttlMs`
 * from its first entry's ts, and at most
 * `STREAM_IDEMPOTENCY_KEYS_PER_ENTRY × size` of them, the oldest dropped
 * first (they do not count towards `maxBytesPerCompany`). An append is one
 * synchronous step, so two appends with the same key on this instance never
 * both store.
 *
 * @throws RangeError when `size`, `ttlMs`, `idleMs` or `maxBytesPerCompany` is not a positive integer.
 */
export function memoryStreamStore(options: MemoryStreamStoreOptions = {}): StreamStore {
  const now = options.now ?? Date.now;
  const { size, ttlMs, idleMs } = resolveStreamStoreOptions("memoryStreamStore", options);
  const { maxBytesPerCompany } = checkPositiveIntegers("memoryStreamStore", {
    maxBytesPerCompany: options.maxBytesPerCompany ?? DEFAULT_MEMORY_BYTES_PER_COMPANY,
  });
  const sweepEveryMs = Math.min(ttlMs, idleMs);
  const maxKeys = STREAM_IDEMPOTENCY_KEYS_PER_ENTRY * size;

  /** companyId → its streams: nested, never joined into one key, so no ids can collide. */
  const companies = new Map<string, CompanyStreams>();
  const totals: StreamTrimStats = { trimmed: 0, expired: 0 };
  let sweptAt = now();

  /** Drops a record's oldest `count` entries, and their bytes from the company's; a record left empty may be forgotten for room. */
  const dropOldest = (company: CompanyStreams, record: StreamRecord, count: number) => {
    removeOldest(record.entries, count);
    for (const bytes of removeOldest(record.sizes, count)) company.bytes -= bytes;
    company.count -= count;
    if (record.entries.length === 0) company.empty.set(record.stream, record);
  };

  /** Forgets a stream the company holds, and its epoch with it, giving its bytes back. */
  const forget = (company: CompanyStreams, record: StreamRecord) => {
    if (company.streams.get(record.stream) !== record) return;
    company.streams.delete(record.stream);
    company.empty.delete(record.stream);
    company.bytes -= recordBytes(record.stream);
  };

  /** Forgets the least recently touched streams that keep no entry, but `inUse`, while the company is past its bytes. */
  const forgetEmptyStreams = (company: CompanyStreams, inUse: StreamRecord | undefined) => {
    for (const record of company.empty.values()) {
      if (company.bytes <= maxBytesPerCompany) return;
      if (record !== inUse) forget(company, record);
    }
  };

  /** Forgets keys past the TTL, then the oldest beyond the bound (`extra` makes room for keys about to be added). */
  const dropKeys = (record: StreamRecord, at: number, extra: number) => {
    for (const [key, first] of record.keys) {
      if (first.ts + ttlMs > at && record.keys.size + extra <= maxKeys) break;
      record.keys.delete(key);
    }
  };

  const dropExpired = (company: CompanyStreams, record: StreamRecord, at: number) => {
    dropKeys(record, at, 0);
    const { entries } = record;
    let count = 0;
    while (count < entries.length && entries[count]!.ts + ttlMs <= at) count += 1;
    if (count === 0) return;
    record.expiredTo = entries[count - 1]!.offset;
    dropOldest(company, record, count);
    totals.expired += count;
  };

  /**
   * Brings the company within its bytes: forgets its streams that keep no entry (but `inUse`, which the
   * caller is about to answer with), then drops its oldest entries and forgets the streams that leaves
   * empty; and sweeps out what other drops left behind.
   */
  const trimCompany = (company: CompanyStreams, inUse?: StreamRecord) => {
    forgetEmptyStreams(company, inUse);
    const { appended } = company;
    while (company.bytes > maxBytesPerCompany && company.appendedStart < appended.length) {
      const { record, offset } = appended[company.appendedStart++]!;
      // Entries leave a stream oldest first, so a kept entry is always its stream's oldest.
      if (record.entries[0]?.offset !== offset) continue;
      record.trimmedTo = offset;
      dropOldest(company, record, 1);
      totals.trimmed += 1;
    }
    forgetEmptyStreams(company, inUse);
    if (appended.length - company.appendedStart > 2 * company.count + 64) {
      company.appended = appended.slice(company.appendedStart).filter(({ record, offset }) => offset >= (record.entries[0]?.offset ?? Infinity));
      company.appendedStart = 0;
    }
  };

  const isForgotten = (record: StreamRecord, at: number) =>
    record.entries.length === 0 && record.touchedAt + ttlMs + idleMs <= at;

  /** Applies the TTL to every stream and forgets the idle ones. */
  const sweep = (at: number) => {
    sweptAt = at;
    for (const [companyId, company] of companies) {
      for (const [stream, record] of company.streams) {
        dropExpired(company, record, at);
        if (isForgotten(record, at)) forget(company, record);
      }
      if (company.streams.size === 0) companies.delete(companyId);
      else trimCompany(company);
    }
  };

  /** The stream's live record and its company, with the TTL applied; a new epoch when there is none. */
  const recordFor = (key: StreamKey, at: number): { company: CompanyStreams; record: StreamRecord } => {
    if (at - sweptAt >= sweepEveryMs) sweep(at);
    let company = companies.get(key.companyId);
    if (!company) companies.set(key.companyId, (company = { streams: new Map(), empty: new Map(), bytes: 0, count: 0, appended: [], appendedStart: 0 }));
    let record = company.streams.get(key.stream);
    if (record) {
      dropExpired(company, record, at);
      if (isForgotten(record, at)) {
        forget(company, record);
        record = undefined;
      }
    }
    if (!record) {
      record = { stream: key.stream, epoch: randomUUID(), entries: [], sizes: [], top: 0, trimmedTo: 0, expiredTo: 0, touchedAt: at, keys: new Map() };
      company.streams.set(key.stream, record);
      company.bytes += recordBytes(key.stream);
      trimCompany(company, record);
    }
    record.touchedAt = at;
    if (record.entries.length === 0) {
      // Re-inserted at the end, so the stream touched longest ago is forgotten first.
      company.empty.delete(key.stream);
      company.empty.set(key.stream, record);
    }
    return { company, record };
  };

  return markInProcess({
    async append(key, event, data, options) {
      const idempotencyKey = idempotencyKeyOf(options, "memoryStreamStore");
      const at = now();
      const { company, record } = recordFor(key, at);
      const { entries } = record;
      // recordFor applied the TTL to the keys: one still here is a duplicate.
      const first = idempotencyKey === undefined ? undefined : record.keys.get(idempotencyKey);
      if (first) {
        const stored = entries[first.offset - (record.top - entries.length + 1)];
        // The size cap may have dropped the first entry: its offset and ts still answer for it.
        const entry = stored?.offset === first.offset ? { ...stored } : { offset: first.offset, event, data, ts: first.ts };
        return { epoch: record.epoch, entry, duplicate: true };
      }
      // Never older than the entry before it, so the TTL drops from the front only.
      const ts = Math.max(at, entries.at(-1)?.ts ?? at);
      const entry: StreamEntry = { offset: record.top + 1, event, data, ts };
      // The engine's snapshot comes with its JSON: not encoded again just to be measured.
      const bytes = Buffer.byteLength(event) + Buffer.byteLength(snapshotJson(data) ?? JSON.stringify(data) ?? "");
      record.top = entry.offset;
      if (entries.length === 0) company.empty.delete(record.stream);
      entries.push(entry);
      record.sizes.push(bytes);
      company.bytes += bytes;
      company.count += 1;
      company.appended.push({ record, offset: entry.offset });
      const overCap = entries.length - size;
      if (overCap > 0) {
        record.trimmedTo = entries[overCap - 1]!.offset;
        dropOldest(company, record, overCap);
        totals.trimmed += overCap;
      }
      trimCompany(company, record);
      if (idempotencyKey !== undefined) {
        dropKeys(record, at, 1);
        record.keys.set(idempotencyKey, { offset: entry.offset, ts });
      }
      return { epoch: record.epoch, entry: { ...entry }, duplicate: false };
    },

    async read(key, after, limit) {
      assertOffset(after);
      const { record } = recordFor(key, now());
      const { entries, top } = record;
      const first = top - entries.length + 1;
      const start = Math.max(after + 1, first) - first;
      const count = limit > 0 ? Math.min(Math.floor(limit), entries.length) : 0;
      return {
        epoch: record.epoch,
        top,
        entries: entries.slice(start, start + count).map((entry) => ({ ...entry })),
        gap: after + 1 < first && after < top ? gapReason(after + 1, record) : null,
      };
    },

    async trimmed() {
      sweep(now());
      return { ...totals };
    },
  });
}

/** What the company's bytes count for holding a stream, whatever it keeps. */
function recordBytes(stream: string): number {
  return STREAM_RECORD_OVERHEAD_BYTES + stream.length;
}

/**
 * Why `offset` was dropped, from the highest offset each cause dropped: the
 * cause whose drops reach past the other's when `offset` lies beyond the
 * other's, else the other.
 */
function gapReason(offset: number, { trimmedTo, expiredTo }: StreamRecord): StreamGapReason {
  const [earlier, later]: [StreamGapReason, StreamGapReason] =
    trimmedTo < expiredTo ? ["HISTORY_TRIMMED", "HISTORY_EXPIRED"] : ["HISTORY_EXPIRED", "HISTORY_TRIMMED"];
  return offset > Math.min(trimmedTo, expiredTo) ? later : earlier;
}

/** Offsets are whole numbers from 0 (before the first entry). */
function assertOffset(after: number): void {
  if (!(Number.isSafeInteger(after) && after >= 0)) {
    throw new TypeError(`memoryStreamStore: after must be an offset (an integer >= 0), got ${after}`);
  }
}
