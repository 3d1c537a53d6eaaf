import { randomUUID } from "node:crypto";
import {
  resolveStreamStoreOptions,
  type StreamEntry,
  type StreamGapReason,
  type StreamKey,
  type StreamStore,
  type StreamStoreOptions,
  type StreamTrimStats,
} from "./store.js";

/** Options of {@link memoryStreamStore}. */
export interface MemoryStreamStoreOptions extends StreamStoreOptions {
  /** Clock in epoch ms, for tests. Default `Date.now`. */
  now?: () => number;
}

interface StreamRecord {
  epoch: string;
  /** Oldest first; the last one has offset `top`, and offsets are contiguous. */
  entries: StreamEntry[];
  /** The last offset handed out in this epoch. */
  top: number;
  /** The highest offset the size cap dropped (0 when none). */
  trimmedTo: number;
  /** The highest offset the TTL dropped (0 when none). */
  expiredTo: number;
  /** The last append or read, epoch ms: what the idle clock counts from. */
  touchedAt: number;
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
 * @throws RangeError when `size`, `ttlMs` or `idleMs` is not a positive integer.
 */
export function memoryStreamStore(options: MemoryStreamStoreOptions = {}): StreamStore {
  const now = options.now ?? Date.now;
  const { size, ttlMs, idleMs } = resolveStreamStoreOptions("memoryStreamStore", options);
  const sweepEveryMs = Math.min(ttlMs, idleMs);

  /** companyId → stream → record: nested, never joined into one key, so no ids can collide. */
  const companies = new Map<string, Map<string, StreamRecord>>();
  const totals: StreamTrimStats = { trimmed: 0, expired: 0 };
  let sweptAt = now();

  const dropExpired = (record: StreamRecord, at: number) => {
    const { entries } = record;
    let count = 0;
    while (count < entries.length && entries[count]!.ts + ttlMs <= at) count += 1;
    if (count === 0) return;
    record.expiredTo = entries[count - 1]!.offset;
    entries.splice(0, count);
    totals.expired += count;
  };

  const isForgotten = (record: StreamRecord, at: number) =>
    record.entries.length === 0 && record.touchedAt + ttlMs + idleMs <= at;

  /** Applies the TTL to every stream and forgets the idle ones. */
  const sweep = (at: number) => {
    sweptAt = at;
    for (const [companyId, streams] of companies) {
      for (const [stream, record] of streams) {
        dropExpired(record, at);
        if (isForgotten(record, at)) streams.delete(stream);
      }
      if (streams.size === 0) companies.delete(companyId);
    }
  };

  /** The stream's live record, with the TTL applied; a new epoch when there is none. */
  const recordFor = (key: StreamKey, at: number): StreamRecord => {
    if (at - sweptAt >= sweepEveryMs) sweep(at);
    let streams = companies.get(key.companyId);
    if (!streams) companies.set(key.companyId, (streams = new Map()));
    let record = streams.get(key.stream);
    if (record) {
      dropExpired(record, at);
      if (isForgotten(record, at)) record = undefined;
    }
    if (!record) {
      record = { epoch: randomUUID(), entries: [], top: 0, trimmedTo: 0, expiredTo: 0, touchedAt: at };
      streams.set(key.stream, record);
    }
    record.touchedAt = at;
    return record;
  };

  return {
    async append(key, event, data) {
      const at = now();
      const record = recordFor(key, at);
      const { entries } = record;
      // Never older than the entry before it, so the TTL drops from the front only.
      const ts = Math.max(at, entries.at(-1)?.ts ?? at);
      const entry: StreamEntry = { offset: record.top + 1, event, data, ts };
      record.top = entry.offset;
      entries.push(entry);
      const overCap = entries.length - size;
      if (overCap > 0) {
        record.trimmedTo = entries[overCap - 1]!.offset;
        entries.splice(0, overCap);
        totals.trimmed += overCap;
      }
      return { epoch: record.epoch, entry: { ...entry } };
    },

    async read(key, after, limit) {
      assertOffset(after);
      const record = recordFor(key, now());
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
  };
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
