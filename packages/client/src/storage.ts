/**
 * What the persistent client stores (inbox dedup, stream positions) share:
 * the part of the Web Storage API they use, and reading and writing one JSON
 * value under a key without ever failing delivery over storage trouble.
 */

/** The part of the Web Storage API the `localStorage…Store` functions use. */
export interface KeyValueStorage {
  /** The stored string, or `null`. */
  getItem(key: string): string | null;
  /** Stores a string; may throw when the quota is exceeded. */
  setItem(key: string, value: string): void;
}

/** `globalThis.localStorage`, or `undefined` where there is none or access throws (storage disabled). */
export function defaultStorage(): KeyValueStorage | undefined {
  try {
    return (globalThis as { localStorage?: KeyValueStorage }).localStorage;
  } catch {
    return undefined;
  }
}

/** The JSON value under `key`, or `undefined` when there is none, no storage, or it is not JSON (foreign data under our key). */
export function readJson(storage: KeyValueStorage | undefined, key: string): unknown {
  if (!storage) return undefined;
  try {
    return JSON.parse(storage.getItem(key) ?? "null") ?? undefined;
  } catch {
    return undefined;
  }
}

/** Writes `value` as JSON under `key`; a full or disabled storage is ignored, the caller's in-memory copy still covers this page. */
export function writeJson(storage: KeyValueStorage | undefined, key: string, value: unknown): void {
  if (!storage) return;
  try {
    storage.setItem(key, JSON.stringify(value));
  } catch {
    // Quota exceeded or storage disabled.
  }
}

/** Checks a store's bound. @throws TypeError naming `what` unless `max` is a positive integer. */
export function checkMax(max: number, what: string): number {
  if (!Number.isSafeInteger(max) || max < 1) throw new TypeError(`A ${what}'s max must be a positive integer; got ${String(max)}.`);
  return max;
}
