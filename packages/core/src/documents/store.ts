import type { DocumentData, DocumentVersion } from "@truss/protocol";
import { checkPositiveIntegers } from "../store-options.js";

export type { DocumentData, DocumentVersion } from "@truss/protocol";

/** Addresses one document. `companyId` always comes from the verified principal. */
export interface DocumentKey {
  /** The tenant that owns the document. */
  companyId: string;
  /** The document's kind, e.g. `project`, `expense`. */
  type: string;
  /** The document's id within its type. */
  id: string;
}

/**
 * A write's mutation, which the store records atomically with the commit so
 * the same mutation never commits twice.
 */
export interface MutationRef {
  /** Non-empty; unique among all writes to the document (the engine joins the writer's user id and the client's mutation id). */
  id: string;
  /**
   * When the writer made the change, epoch ms on the server's clock, at the
   * earliest: the store decides from it whether a mutation it has no record
   * of may be one it already forgot ({@link MutationState} `expired`).
   */
  madeAt: number;
}

/**
 * What a store knows of a mutation:
 * - `new`: never committed, as far as any record could tell;
 * - `committed`: committed as `version`;
 * - `expired`: not on record, but made before the store's records go back
 *   (older than `mutationTtlMs`, or before the newest record the
 *   `maxMutations` cap pushed out), so it may have been committed and
 *   forgotten.
 */
export type MutationState = { state: "new" } | { state: "committed"; version: number } | { state: "expired" };

/** The outcome of {@link DocumentStore.compareAndSet}. */
export type CompareAndSetResult =
  | { ok: true; document: DocumentVersion }
  | {
      ok: false;
      /** The latest version, or `null` when the document does not exist. */
      current: DocumentVersion | null;
      /** Set when the write's mutation was already committed or is too old to tell: then nothing was compared. */
      mutation?: Exclude<MutationState, { state: "new" }>;
    };

/**
 * Versioned JSON documents with an atomic compare-and-set and a history of
 * committed versions. Two writers that both expect version N can never both
 * commit: exactly one gets N+1, the other gets `ok: false` and the current
 * version.
 */
export interface DocumentStore {
  /** The latest version, or `null` when the document does not exist. */
  get(key: DocumentKey): Promise<DocumentVersion | null>;
  /** A specific committed version, or `null` when it does not exist or was trimmed from history. */
  getVersion(key: DocumentKey, version: number): Promise<DocumentVersion | null>;
  /**
   * Atomically commits `data` as version `expectedVersion + 1` if the latest
   * version is `expectedVersion` (0 = the document must not exist yet), and
   * appends it to the history, trimming the history to its count and byte
   * caps. Otherwise changes nothing and resolves `{ ok: false, current }`.
   *
   * With a `mutation`, its state is checked first, in the same atomic step:
   * a mutation already `committed` or `expired` ({@link DocumentStore.mutation}) commits
   * nothing and resolves `{ ok: false, current, mutation }`. A commit records
   * the mutation with the version it made, then forgets records older than
   * `mutationTtlMs` and, oldest first (in the order they were recorded, so
   * records of the same millisecond go in commit order), those past
   * `maxMutations` for the document. Records past the TTL may linger until
   * the next such commit; `mutation()` may still answer `committed` for them.
   */
  compareAndSet(
    key: DocumentKey,
    expectedVersion: number,
    data: DocumentData,
    updatedBy: string | null,
    mutation?: MutationRef,
  ): Promise<CompareAndSetResult>;
  /** What the store knows of a mutation of this document; changes nothing. */
  mutation(key: DocumentKey, mutation: MutationRef): Promise<MutationState>;
  /** Up to `limit` committed versions, newest first. */
  history(key: DocumentKey, limit: number): Promise<DocumentVersion[]>;
  /** Rejects when the store cannot be reached; used by `engine.health()`. Optional. */
  ping?(): Promise<void>;
}

/** Options every document store implementation accepts. */
export interface DocumentStoreOptions {
  /** How many versions of each document the history keeps. Default 100. */
  maxHistory?: number;
  /**
   * How many bytes of versions (their data as JSON) each document's history
   * keeps; the oldest go first, and the latest version is always kept.
   * Default 4 MiB.
   */
  maxHistoryBytes?: number;
  /**
   * How many mutation ids each document remembers, so a repeated write is
   * recognised; the oldest go first. Default 1,000.
   */
  maxMutations?: number;
  /** How long a mutation id is remembered, in ms. Default 7 days. */
  mutationTtlMs?: number;
}

/** Default number of versions kept per document. */
export const DEFAULT_DOCUMENT_HISTORY = 100;
/** Default bytes of history kept per document: 4 MiB. */
export const DEFAULT_DOCUMENT_HISTORY_BYTES = 4 * 1024 * 1024;
/** Default number of mutation ids remembered per document. */
export const DEFAULT_MAX_MUTATIONS = 1000;
/** Default time a mutation id is remembered: 7 days. */
export const DEFAULT_MUTATION_TTL_MS = 7 * 24 * 60 * 60 * 1000;

/**
 * Applies the defaults to a document store's options and checks them; every
 * implementation calls it, so all agree on defaults and on what is refused.
 *
 * @param store - the implementation's name, for the error message.
 * @throws RangeError when an option is not a positive integer.
 */
export function resolveDocumentStoreOptions(store: string, options: DocumentStoreOptions = {}): Required<DocumentStoreOptions> {
  return checkPositiveIntegers(store, {
    maxHistory: options.maxHistory ?? DEFAULT_DOCUMENT_HISTORY,
    maxHistoryBytes: options.maxHistoryBytes ?? DEFAULT_DOCUMENT_HISTORY_BYTES,
    maxMutations: options.maxMutations ?? DEFAULT_MAX_MUTATIONS,
    mutationTtlMs: options.mutationTtlMs ?? DEFAULT_MUTATION_TTL_MS,
  });
}

/**
 * Whether a mutation with no record may be one the store forgot: made before
 * the TTL cut-off, or at or before `forgottenBefore` (the newest record time
 * the `maxMutations` cap has pushed out). Shared by the stores so all draw
 * the line alike.
 */
export function mutationMayBeForgotten(madeAt: number, forgottenBefore: number, now: number, ttlMs: number): boolean {
  return madeAt <= forgottenBefore || madeAt < now - ttlMs;
}
