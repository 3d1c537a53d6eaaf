import { randomUUID } from "node:crypto";
import { RevocationsByUser } from "./by-user.js";
import type { RevocationPage, RevocationRecord, RevocationStore } from "./store.js";
import { checkPositiveIntegers } from "../kernel/store-options.js";
import { markInProcess } from "../kernel/in-process.js";

/** Options of {@link memoryRevocationStore}. */
export interface MemoryRevocationStoreOptions {
  /**
   * Most records kept; past it the oldest go first, even before they expire.
   * Default 10,000 (`DEFAULTS.revocations.maxRecords`).
   */
  maxRecords?: number;
  /** Clock in epoch ms, for tests. Default `Date.now`. */
  now?: () => number;
}

/**
 * Default cap of the memory revocation store: 10,000 records, a few MB at
 * most. A process that revokes more within one TTL forgets the oldest early.
 */
export const DEFAULT_MAX_REVOCATIONS = 10_000;

/**
 * The in-memory revocation store, the engine's default for a single node.
 * Records live as long as the process (a restart forgets them, as it drops
 * every connection they applied to) and at most `maxRecords` of them, so a
 * burst of revocations cannot grow the heap without bound.
 *
 * @throws RangeError when `maxRecords` is not a positive integer.
 */
export function memoryRevocationStore(options: MemoryRevocationStoreOptions = {}): RevocationStore {
  const now = options.now ?? Date.now;
  const { maxRecords } = checkPositiveIntegers("memoryRevocationStore", { maxRecords: options.maxRecords ?? DEFAULT_MAX_REVOCATIONS });
  /** Every record in the order added, each with its sequence number; trimmed from the front. */
  const log: Array<{ seq: number; record: RevocationRecord }> = [];
  const byUser = new RevocationsByUser(maxRecords, now);
  /** Names this store's sequence, so a cursor from another store is read from the start. */
  const epoch = randomUUID();
  let seq = 0;

  const trim = () => {
    const at = now();
    let drop = Math.max(0, log.length - maxRecords);
    while (drop < log.length && log[drop]!.record.expiresAt <= at) drop += 1;
    if (drop > 0) log.splice(0, drop);
  };

  /** The index of the first entry after `after`; the log is sorted by sequence. */
  const firstAfter = (after: number) => {
    let low = 0;
    let high = log.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (log[middle]!.seq <= after) low = middle + 1;
      else high = middle;
    }
    return low;
  };

  return markInProcess({
    async add(record) {
      const copy = structuredClone(record);
      seq += 1;
      log.push({ seq, record: copy });
      byUser.add(copy);
      trim();
    },

    async forUser(user) {
      return byUser.of(user).map((record) => structuredClone(record));
    },

    async since(cursor, limit): Promise<RevocationPage> {
      const [cursorEpoch, position] = (cursor ?? "").split(":");
      let after = cursorEpoch === epoch ? Number(position) : 0;
      if (!Number.isSafeInteger(after) || after < 0) after = 0;
      const at = now();
      const records: RevocationRecord[] = [];
      for (let index = firstAfter(after); index < log.length && records.length < limit; index += 1) {
        const entry = log[index]!;
        after = entry.seq;
        if (entry.record.expiresAt > at) records.push(structuredClone(entry.record));
      }
      return { records, cursor: `${epoch}:${after}` };
    },
  });
}
