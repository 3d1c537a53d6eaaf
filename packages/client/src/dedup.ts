import { checkMax, defaultStorage, readJson, writeJson, type KeyValueStorage } from "./storage.js";

export type { KeyValueStorage } from "./storage.js";

/**
 * Remembers which inbox message ids the app has already handled, so a message
 * the server sends again (its ack was lost, the page reloaded before the ack
 * went out) is acknowledged without reaching the app a second time.
 *
 * It must be bounded: it only needs the ids the server could still replay,
 * which is at most the inbox's length cap (1,000 by default) per user.
 * Either method may be async (IndexedDB, React Native AsyncStorage); the
 * client awaits them one message at a time, in order.
 */
export interface DedupStore {
  /** Whether `id` was added before (and not yet evicted). */
  has(id: string): boolean | Promise<boolean>;
  /** Records `id` as handled, evicting the oldest ids past the bound. */
  add(id: string): void | Promise<void>;
}

/** The default bound: the server inbox's default length cap. */
export const DEFAULT_DEDUP_MAX = 1000;

/**
 * An in-memory {@link DedupStore} keeping the last `max` ids. It covers
 * reconnects within one page or process; share one instance between client
 * instances to cover re-creating the client, or use a persistent store to
 * cover a page reload.
 *
 * @param max - how many ids to keep; the oldest go first. Default 1,000.
 */
export function memoryDedupStore(max = DEFAULT_DEDUP_MAX): DedupStore {
  const ids = new BoundedIdSet(checkMax(max, "dedup store"));
  return {
    has: (id) => ids.has(id),
    add: (id) => void ids.add(id),
  };
}

/**
 * A {@link DedupStore} persisted in `localStorage` under `key`, so a message
 * handled right before a page reload is not handled again after it. Use one
 * key per user (`truss:inbox:${userId}`): inbox ids are unique per user only.
 *
 * The ids are also kept in memory, so a full or unavailable storage (private
 * mode, quota) degrades to {@link memoryDedupStore} instead of failing
 * delivery.
 *
 * @param key - the storage key.
 * @param max - how many ids to keep; the oldest go first. Default 1,000.
 * @param storage - defaults to `globalThis.localStorage`; pass `sessionStorage` or a compatible object.
 */
export function localStorageDedupStore(key: string, max = DEFAULT_DEDUP_MAX, storage?: KeyValueStorage): DedupStore {
  const bound = checkMax(max, "dedup store");
  const backing = storage ?? defaultStorage();
  const stored = readJson(backing, key);
  const ids = new BoundedIdSet(bound, Array.isArray(stored) ? stored.filter((id): id is string => typeof id === "string").slice(-bound) : []);
  return {
    has: (id) => ids.has(id),
    add: (id) => {
      if (ids.add(id)) writeJson(backing, key, ids.toArray());
    },
  };
}

/** A set of ids that forgets the oldest once it holds `max`. */
class BoundedIdSet {
  // A Set iterates in insertion order, which makes it a FIFO for free.
  private readonly ids: Set<string>;

  constructor(
    private readonly max: number,
    initial: readonly string[] = [],
  ) {
    this.ids = new Set(initial);
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  /** Adds `id`; returns whether it was new. */
  add(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    while (this.ids.size > this.max) this.ids.delete(this.ids.values().next().value as string);
    return true;
  }

  toArray(): string[] {
    return [...this.ids];
  }
}
