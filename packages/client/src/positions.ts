import type { StreamPosition } from "@truss/protocol";
import { checkMax, defaultStorage, readJson, writeJson, type KeyValueStorage } from "./storage.js";

/** Where the last message of a stream that was handed to the app sits: its epoch and offset. */
export type StoredPosition = Pick<StreamPosition, "epoch" | "offset">;

/**
 * Remembers, per stream (`company`, `topic:<name>`), the position of the last
 * message the app was handed, so that after a reconnection, or a page reload
 * with a persistent store, the client reads exactly what came after it.
 *
 * Any method may be async (IndexedDB, React Native AsyncStorage). The client
 * reads a stream's position once, when it starts tracking the stream, and
 * from then on keeps it in memory and writes each change through.
 */
export interface PositionStore {
  /** The saved position of `stream`, or `undefined` when there is none. */
  get(stream: string): StoredPosition | undefined | Promise<StoredPosition | undefined>;
  /** Saves the position of `stream`, replacing the one before. */
  set(stream: string, position: StoredPosition): void | Promise<void>;
  /** Forgets `stream` (unsubscribed, dropped by the server). */
  delete(stream: string): void | Promise<void>;
}

/** The default bound: how many streams a store remembers before it forgets the least recently saved. */
export const DEFAULT_POSITION_MAX = 1000;

/**
 * An in-memory {@link PositionStore}: the default. It covers reconnections
 * of one client; share one instance between client instances to cover
 * re-creating the client, or use a persistent store to cover a page reload.
 *
 * @param max - how many streams to remember; the least recently saved go first. Default 1,000.
 */
export function memoryPositionStore(max = DEFAULT_POSITION_MAX): PositionStore {
  const positions = new BoundedPositions(checkMax(max, "position store"));
  return {
    get: (stream) => positions.get(stream),
    set: (stream, position) => void positions.set(stream, position),
    delete: (stream) => void positions.delete(stream),
  };
}

/**
 * A {@link PositionStore} persisted in `localStorage` under `key`, so a page
 * reload resumes each stream right after the last message the previous page
 * handled. Streams are per company and topics per user's subscriptions: use
 * one key per company and user (`truss:streams:${companyId}:${userId}`).
 *
 * Positions are also kept in memory, so a full or unavailable storage
 * (private mode, quota) degrades to {@link memoryPositionStore} instead of
 * failing delivery.
 *
 * @param key - the storage key.
 * @param max - how many streams to remember; the least recently saved go first. Default 1,000.
 * @param storage - defaults to `globalThis.localStorage`; pass `sessionStorage` or a compatible object.
 */
export function localStoragePositionStore(key: string, max = DEFAULT_POSITION_MAX, storage?: KeyValueStorage): PositionStore {
  const bound = checkMax(max, "position store");
  const backing = storage ?? defaultStorage();
  const stored = readJson(backing, key);
  const positions = new BoundedPositions(
    bound,
    Array.isArray(stored)
      ? stored.filter((entry): entry is [string, StoredPosition] => Array.isArray(entry) && typeof entry[0] === "string" && isStoredPosition(entry[1]))
      : [],
  );
  const write = () => writeJson(backing, key, positions.toEntries());
  return {
    get: (stream) => positions.get(stream),
    set: (stream, position) => {
      positions.set(stream, position);
      write();
    },
    delete: (stream) => {
      if (positions.delete(stream)) write();
    },
  };
}

/** Positions by stream that forgets the least recently saved past `max`. */
class BoundedPositions {
  // A Map iterates in insertion order; re-inserting on every save keeps the stalest first.
  private readonly positions = new Map<string, StoredPosition>();

  constructor(
    private readonly max: number,
    initial: ReadonlyArray<[string, StoredPosition]> = [],
  ) {
    for (const [stream, position] of initial) this.set(stream, position);
  }

  get(stream: string): StoredPosition | undefined {
    const position = this.positions.get(stream);
    return position && { ...position };
  }

  set(stream: string, position: StoredPosition): void {
    this.positions.delete(stream);
    this.positions.set(stream, { epoch: position.epoch, offset: position.offset });
    while (this.positions.size > this.max) this.positions.delete(this.positions.keys().next().value as string);
  }

  /** Forgets `stream`; returns whether it was there. */
  delete(stream: string): boolean {
    return this.positions.delete(stream);
  }

  toEntries(): Array<[string, StoredPosition]> {
    return [...this.positions];
  }
}

/** Whether `value` is a position a stream message can have: an epoch and an offset from 1 (0 before the first). */
function isStoredPosition(value: unknown): value is StoredPosition {
  const candidate = value as Partial<StoredPosition> | null;
  return typeof candidate?.epoch === "string" && Number.isSafeInteger(candidate.offset) && candidate.offset! >= 0;
}
