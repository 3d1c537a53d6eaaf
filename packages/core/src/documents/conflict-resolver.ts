import type { DocumentData, FieldConflict } from "@truss/protocol";

export type { FieldConflict } from "@truss/protocol";

/** What a resolver is asked to decide. */
export interface ResolveInput {
  /** The document at the writer's base version, or `null` if it is no longer in history. */
  base: DocumentData | null;
  /** The latest committed document. */
  current: DocumentData;
  /** The fields the writer changed (top-level keys; `null` deletes a field). */
  changes: DocumentData;
  /** The version the writer based its change on. */
  baseVersion: number;
  /** The latest committed version. */
  currentVersion: number;
}

/**
 * A resolver's verdict. Merged `data` is committed as JSON carries it: a
 * field set to `undefined` is left out (delete it, or leave it out, to remove
 * it), and data JSON cannot carry (a cycle, a BigInt) or nested past
 * `limits.maxDepth` is the resolver's failure, answered `HANDLER_ERROR` (as
 * is a resolver that throws) and logged.
 */
export type Resolution =
  | { outcome: "merged"; data: DocumentData }
  | { outcome: "conflict"; conflicts: FieldConflict[] };

/**
 * Decides what happens when a writer's base version is stale (someone else
 * committed since). Not consulted when the base is current: then the changes
 * apply as they are. Must be a pure function of its input.
 */
export interface ConflictResolver {
  /** A short name for logs and metrics, e.g. `fieldMerge`. */
  readonly name: string;
  /** Merges the changes into `current`, or names every conflicting field. */
  resolve(input: ResolveInput): Resolution;
}
