import type { DocumentData, DocumentVersion } from "@truss/protocol";
import { checkPositiveIntegers } from "../kernel/store-options.js";
import { methodsOf } from "../kernel/contract.js";

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
   * Who made it: the writer's user id, `""` for a server-side write. Records
   * are kept and capped per writer, so one writer's commits never push
   * another's out of the window.
   */
  writer: string;
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
 * - `expired`: not on record, but made before the store's records of its
 *   writer go back (older than `mutationTtlMs`, or at or before the writer's
 *   horizon, see {@link DocumentStore.compareAndSet}), so it may have been
 *   committed and forgotten.
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
   * the mutation with the version it made, under its writer, then:
   * 1. forgets the writer's records older than `mutationTtlMs` and, oldest
   *    first (in the order they were recorded, so records of the same
   *    millisecond go in commit order), those past `maxMutations`; the
   *    newest record time the cap pushed out becomes the writer's horizon;
   * 2. forgets whole writers whose newest record is older than
   *    `mutationTtlMs`, then, past `maxMutationWriters` writers, the least
   *    recently committed ones: each leaves its newest record time as its
   *    horizon (never the writer committing now);
   * 3. forgets horizons older than `mutationTtlMs` (the TTL covers them) and,
   *    past {@link MUTATION_HORIZONS_PER_WRITER} × `maxMutationWriters` of
   *    them, the oldest, raising the document's horizon to the newest of
   *    those (the document's horizon applies to every writer).
   *
   * A mutation with no record is `expired` when it was made at or before its
   * writer's horizon or the document's, or before `mutationTtlMs`. So a
   * writer's pending mutation can only expire behind the writer's own later
   * commits (by its cap, or by its eviction once `maxMutationWriters` other
   * writers committed after it), or once more horizons than the document
   * keeps were forgotten within the TTL. Records past the TTL may linger
   * until the next such commit; `mutation()` may still answer `committed`
   * for them. A store held to a quota may forget records sooner (the memory
   * store's `maxBytesPerCompany`, oldest first), each as the cap does, its
   * time becoming its writer's horizon; never so that a committed mutation
   * is taken for new.
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

/** The methods every {@link DocumentStore} must have; `createRealtimeEngine` refuses a store without one of them. */
export const DOCUMENT_STORE_METHODS = methodsOf<DocumentStore>({ get: true, getVersion: true, compareAndSet: true, mutation: true, history: true });

/*
 * What the engine checks of a store's answers before it uses them (`storeCall`'s
 * `answers`): enough of the shape that a store answering outside its contract
 * is INTERNAL_ERROR at the call, not a TypeError where the engine first reads it.
 */

/** A committed version: an object with a positive integer version and an object of data. */
export function isDocumentVersion(answer: unknown): answer is DocumentVersion {
  if (typeof answer !== "object" || answer === null) return false;
  const { version, data } = answer as Partial<DocumentVersion>;
  return Number.isSafeInteger(version) && version! > 0 && typeof data === "object" && data !== null && !Array.isArray(data);
}

/** `get` and `getVersion`: a version, or `null` when there is none. */
export const isVersionOrNull = (answer: unknown): answer is DocumentVersion | null => answer === null || isDocumentVersion(answer);

/** `history`: an array of versions. */
export const isHistory = (answer: unknown): answer is DocumentVersion[] => Array.isArray(answer) && answer.every(isDocumentVersion);

/** `compareAndSet`: committed with its version, or not with the latest (or `null`). */
export function isCompareAndSetResult(answer: unknown): answer is CompareAndSetResult {
  if (typeof answer !== "object" || answer === null) return false;
  const result = answer as CompareAndSetResult;
  if (result.ok === true) return isDocumentVersion(result.document);
  return result.ok === false && isVersionOrNull(result.current) && (result.mutation === undefined || isMutationState(result.mutation));
}

/** `mutation`: one of the three states, `committed` with its version. */
export function isMutationState(answer: unknown): answer is MutationState {
  if (typeof answer !== "object" || answer === null) return false;
  const { state, version } = answer as { state?: unknown; version?: unknown };
  return state === "new" || state === "expired" || (state === "committed" && Number.isSafeInteger(version));
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
   * How many mutation ids each document remembers per writer (user), so a
   * repeated write is recognised; the writer's oldest go first. Per writer,
   * so another user's commits never push a pending write out.
   *
   * @default 1000
   */
  maxMutations?: number;
  /**
   * How many writers' mutation ids each document keeps at once; past it the
   * least recently committed writer's records are forgotten whole and only
   * its horizon (the time before which its mutations may have been
   * committed) is kept. With {@link maxMutations} it bounds a document's
   * records to `maxMutations × maxMutationWriters`; up to
   * {@link MUTATION_HORIZONS_PER_WRITER} times as many writers' horizons are
   * kept beside them.
   *
   * @default 100
   */
  maxMutationWriters?: number;
  /**
   * How long a mutation id is remembered, in ms.
   *
   * @default 604800000 (7 days)
   */
  mutationTtlMs?: number;
}

/** A document store's options with defaults applied, and the horizon cap derived from them. */
export interface ResolvedDocumentStoreOptions extends Required<DocumentStoreOptions> {
  /** How many writers' horizons each document keeps: `MUTATION_HORIZONS_PER_WRITER × maxMutationWriters`. */
  maxMutationHorizons: number;
}

/** Default number of versions kept per document. */
export const DEFAULT_DOCUMENT_HISTORY = 100;
/** Default bytes of history kept per document: 4 MiB. */
export const DEFAULT_DOCUMENT_HISTORY_BYTES = 4 * 1024 * 1024;
/** Default number of mutation ids remembered per document. */
export const DEFAULT_MAX_MUTATIONS = 1000;
/** Default time a mutation id is remembered: 7 days. */
export const DEFAULT_MUTATION_TTL_MS = 7 * 24 * 60 * 60 * 1000;
/** Default number of writers whose mutation ids a document keeps. */
export const DEFAULT_MAX_MUTATION_WRITERS = 100;
/**
 * How many writers' horizons a document keeps, per writer whose records it
 * keeps. A horizon is one time per writer, so keeping many is cheap, and
 * only once more writers than that were forgotten within the TTL can an
 * old mutation of a writer the document has no horizon for be `expired`.
 */
export const MUTATION_HORIZONS_PER_WRITER = 10;

/**
 * Applies the defaults to a document store's options and checks them; every
 * implementation calls it, so all agree on defaults and on what is refused.
 *
 * @param store - the implementation's name, for the error message.
 * @throws RangeError when an option is not a positive integer.
 */
export function resolveDocumentStoreOptions(store: string, options: DocumentStoreOptions = {}): ResolvedDocumentStoreOptions {
  const resolved = checkPositiveIntegers(store, {
    maxHistory: options.maxHistory ?? DEFAULT_DOCUMENT_HISTORY,
    maxHistoryBytes: options.maxHistoryBytes ?? DEFAULT_DOCUMENT_HISTORY_BYTES,
    maxMutations: options.maxMutations ?? DEFAULT_MAX_MUTATIONS,
    maxMutationWriters: options.maxMutationWriters ?? DEFAULT_MAX_MUTATION_WRITERS,
    mutationTtlMs: options.mutationTtlMs ?? DEFAULT_MUTATION_TTL_MS,
  });
  return { ...resolved, maxMutationHorizons: MUTATION_HORIZONS_PER_WRITER * resolved.maxMutationWriters };
}

/**
 * Whether a mutation with no record may be one the store forgot: made before
 * the TTL cut-off, or at or before `forgottenBefore` (the later of its
 * writer's horizon and the document's, see
 * {@link DocumentStore.compareAndSet}). Shared by the stores so all draw the
 * line alike.
 */
export function mutationMayBeForgotten(madeAt: number, forgottenBefore: number, now: number, ttlMs: number): boolean {
  return madeAt <= forgottenBefore || madeAt < now - ttlMs;
}
