import type { DocumentData, DocumentVersion } from "@truss/protocol";

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

/** The outcome of {@link DocumentStore.compareAndSet}. */
export type CompareAndSetResult =
  | { ok: true; document: DocumentVersion }
  | { ok: false; current: DocumentVersion | null };

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
   * appends it to the history, trimming the history to its count and byte caps. Otherwise changes nothing and resolves
   * `{ ok: false, current }`.
   */
  compareAndSet(
    key: DocumentKey,
    expectedVersion: number,
    data: DocumentData,
    updatedBy: string | null,
  ): Promise<CompareAndSetResult>;
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
}

/** Default number of versions kept per document. */
export const DEFAULT_DOCUMENT_HISTORY = 100;
/** Default bytes of history kept per document: 4 MiB. */
export const DEFAULT_DOCUMENT_HISTORY_BYTES = 4 * 1024 * 1024;
