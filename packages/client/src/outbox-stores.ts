import type { DocumentData } from "@truss/protocol";
import { defaultStorage, readJson, writeJson, type KeyValueStorage } from "./storage.js";

/** What every pending write keeps. */
interface PendingWriteBase {
  /** The write's mutation id: 32 random hex digits, the same on every send, so the server applies it once. */
  mutationId: string;
  /** Its place in the outbox: writes are sent in increasing `seq`. */
  seq: number;
  /** When the write was made, epoch ms by this device's clock. */
  createdAt: number;
  /**
   * The server's failures on this write so far, in a row, with one of
   * `SUSPECT_RETRY_CODES`: kept with the write, so a page load does not
   * start the count of `outbox.maxRefusedAttempts` again.
   */
  suspectRefusals?: { code: string; count: number };
}

/** A queued `documents.update`. */
export interface PendingDocumentWrite extends PendingWriteBase {
  kind: "document";
  /** The document's kind. */
  type: string;
  /** The document's id. */
  id: string;
  /** The fields to set (`null` deletes one); a conflict settled with a merge replaces them. */
  changes: DocumentData;
  /** The version the changes are based on; moved on when an earlier write of this outbox to the same document committed right on it. */
  baseVersion: number;
  /**
   * The changes of this outbox's earlier writes to the same document that
   * its base does not hold (still waiting when it was made, or made on the
   * same base and merged with others' edits since): sent along so the server
   * does not take them for someone else's.
   */
  baseChanges?: DocumentData;
}

/** A queued application event (one of `outbox.events`). */
export interface PendingEventWrite extends PendingWriteBase {
  kind: "event";
  /** The event's name. */
  event: string;
  /** Its payload, as given to `client.emit`. */
  data: unknown;
}

/** A write in the outbox, as an {@link OutboxStore} keeps it. Plain JSON. */
export type PendingWrite = PendingDocumentWrite | PendingEventWrite;

/**
 * Where the outbox keeps pending writes, so they outlive a reload or a closed
 * tab when the store is persistent. Calls may be sync or async; the outbox
 * awaits each before it treats the write as queued. Entries are plain JSON.
 */
export interface OutboxStore {
  /** Every pending write, in any order (the outbox sorts by `seq`). */
  load(): PendingWrite[] | Promise<PendingWrite[]>;
  /** Adds a write, or replaces the one with the same `mutationId`. */
  put(write: PendingWrite): void | Promise<void>;
  /** Removes a write; removing one that is not there is not an error. */
  delete(mutationId: string): void | Promise<void>;
}

/** Keeps pending writes in memory: they survive reconnections, not a reload. The default. */
export function memoryOutboxStore(): OutboxStore {
  const writes = new Map<string, PendingWrite>();
  return {
    load: () => [...writes.values()].map(copy),
    put: (write) => void writes.set(write.mutationId, copy(write)),
    delete: (mutationId) => void writes.delete(mutationId),
  };
}

/**
 * Keeps pending writes in Web Storage under `key`, as one JSON array, so a
 * page reload or the next page of the same browser profile sends them.
 * Use one key per user (writes are sent with the credential of whoever is
 * signed in); several tabs may share one: each sends what it loaded at its
 * start, and the server commits every mutation once.
 *
 * @throws QuotaExceededError (whatever the storage throws) from `put` when
 * the storage is full, and a TypeError when there is no storage (disabled,
 * or not a browser): the write is then not queued, and `documents.update`
 * rejects instead of pretending it will survive a reload.
 */
export function localStorageOutboxStore(key: string, storage: KeyValueStorage | undefined = defaultStorage()): OutboxStore {
  if (typeof key !== "string" || key.length === 0) throw new TypeError("localStorageOutboxStore(key) needs a non-empty key.");
  const read = (): PendingWrite[] => {
    const value = readJson(storage, key);
    return Array.isArray(value) ? value.filter(isPendingWrite) : [];
  };
  return {
    load: read,
    put(write) {
      const writes = read().filter((other) => other.mutationId !== write.mutationId);
      writes.push(write);
      // Written directly, not through writeJson: a write that cannot be kept must say so, and so must a page without storage.
      if (!storage) throw new TypeError("localStorage is not available here (disabled, or not a browser), so the outbox cannot keep writes across a reload.");
      storage.setItem(key, JSON.stringify(writes));
    },
    delete(mutationId) {
      writeJson(storage, key, read().filter((write) => write.mutationId !== mutationId));
    },
  };
}

/**
 * Keeps pending writes in IndexedDB (database `name`, one object store), for
 * outboxes larger than Web Storage's few megabytes or apps that keep their
 * data there anyway. Same sharing rules as {@link localStorageOutboxStore}.
 *
 * @param factory - the `IDBFactory`; default `globalThis.indexedDB`.
 * @throws TypeError (from `load`) when there is no IndexedDB.
 */
export function indexedDbOutboxStore(name: string, factory: IDBFactory | undefined = (globalThis as { indexedDB?: IDBFactory }).indexedDB): OutboxStore {
  if (typeof name !== "string" || name.length === 0) throw new TypeError("indexedDbOutboxStore(name) needs a non-empty database name.");
  let database: Promise<IDBDatabase> | undefined;
  const open = () =>
    (database ??= new Promise<IDBDatabase>((resolve, reject) => {
      if (!factory) return reject(new TypeError("indexedDbOutboxStore: this environment has no IndexedDB."));
      const request = factory.open(name, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(OBJECT_STORE, { keyPath: "mutationId" });
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    }));
  const run = async <T>(mode: IDBTransactionMode, work: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> => {
    const db = await open();
    return new Promise<T>((resolve, reject) => {
      const transaction = db.transaction(OBJECT_STORE, mode);
      const request = work(transaction.objectStore(OBJECT_STORE));
      // Resolved on commit, not on the request's success: only then is the write durable.
      transaction.oncomplete = () => resolve(request.result);
      transaction.onerror = () => reject(transaction.error ?? request.error);
      transaction.onabort = () => reject(transaction.error ?? new Error("indexedDbOutboxStore: the transaction was aborted."));
    });
  };
  return {
    load: async () => ((await run("readonly", (store) => store.getAll())) as unknown[]).filter(isPendingWrite),
    put: async (write) => void (await run("readwrite", (store) => store.put(write))),
    delete: async (mutationId) => void (await run("readwrite", (store) => store.delete(mutationId))),
  };
}

const OBJECT_STORE = "pending-writes";

function copy(write: PendingWrite): PendingWrite {
  return JSON.parse(JSON.stringify(write)) as PendingWrite;
}

/** The largest `seq` a stored write may carry: far past any outbox's count, and far below where `seq + 1` stops counting. */
const MAX_SEQ = 2 ** 48;

/**
 * Whether a stored value is a pending write; anything else (foreign or
 * corrupt data, a custom store's bug) is not sent. The outbox checks what
 * every store loads with it.
 */
export function isPendingWrite(value: unknown): value is PendingWrite {
  const write = value as { [K in keyof PendingDocumentWrite | keyof PendingEventWrite]?: unknown } | null;
  if (typeof write !== "object" || write === null) return false;
  if (typeof write.mutationId !== "string" || write.mutationId.length === 0 || typeof write.createdAt !== "number") return false;
  if (!(Number.isSafeInteger(write.seq) && (write.seq as number) >= 0 && (write.seq as number) <= MAX_SEQ)) return false;
  if (write.kind === "event") return typeof write.event === "string";
  return (
    write.kind === "document" &&
    typeof write.type === "string" &&
    typeof write.id === "string" &&
    typeof write.baseVersion === "number" &&
    typeof write.changes === "object" &&
    write.changes !== null
  );
}
