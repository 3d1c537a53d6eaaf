import { ownField } from "./changes.js";
import { jsonEqual } from "./json-equal.js";
import type { DocumentData, DocumentVersion } from "./store.js";

/** What {@link confirmedBaseChanges} checks a claim against. */
export interface BaseChangesClaim {
  /** The writer's `baseChanges`: fields it says it changed itself since the base. */
  claimed: DocumentData;
  /** The update's own changes: only claims on these fields can matter to a resolver. */
  changes: DocumentData;
  /** The version the update is based on. */
  base: DocumentVersion;
  /** The latest version. */
  current: DocumentVersion;
  /** The user writing now (`null` for a server-side write), compared with each version's `updatedBy`. */
  writer: string | null;
  /** Reads a committed version, `null` when it is no longer in history. */
  versionAt(version: number): Promise<DocumentVersion | null>;
}

/**
 * The part of a writer's `baseChanges` the history confirms as its own: a
 * claimed field counts only when, among the versions committed after the
 * base, the last one that changed the field was committed by this writer,
 * leaving the claimed value (which is then still the current one). A claim
 * on a field someone else changed last (a client passing another user's
 * edit off as its own) is dropped, so the resolver sees that edit as the
 * conflict it is.
 *
 * Only claims on fields the update changes are checked (a resolver only
 * weighs those); a claim that changes nothing against the base is kept as
 * it is. The rest is decided by walking back from the latest version, one
 * version at a time, and stops at the newest change of every claimed field,
 * so a genuine claim (the writer's own write, usually just committed) costs
 * a read or two. A claim whose proof has left the history is not trusted.
 */
export async function confirmedBaseChanges({ claimed, changes, base, current, writer, versionAt }: BaseChangesClaim): Promise<DocumentData> {
  const confirmed = new Map<string, unknown>();
  /** Claimed field → the value it must hold; still to be proven. */
  const unproven = new Map<string, unknown>();
  for (const [field, value] of Object.entries(claimed)) {
    if (value === undefined || ownField(changes, field) === undefined) continue;
    const after = value === null ? undefined : value;
    // Changed since by someone, or never set to this: not the writer's last word on it.
    if (!jsonEqual(ownField(current.data, field), after)) continue;
    if (jsonEqual(ownField(base.data, field), after)) confirmed.set(field, value);
    else unproven.set(field, value);
  }
  let newer = current;
  for (let version = current.version - 1; unproven.size > 0 && version >= base.version; version--) {
    const older = version === base.version ? base : await versionAt(version);
    if (!older) break;
    for (const [field, value] of unproven) {
      if (jsonEqual(ownField(newer.data, field), ownField(older.data, field))) continue;
      if (newer.updatedBy === writer) confirmed.set(field, value);
      unproven.delete(field);
    }
    newer = older;
  }
  return Object.fromEntries(confirmed);
}

