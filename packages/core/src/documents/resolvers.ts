import { jsonEqual } from "./json-equal.js";
import type { ConflictResolver, FieldConflict, Resolution, ResolveInput } from "./conflict-resolver.js";
import { applyChanges, ownField } from "./changes.js";
import type { DocumentData } from "./store.js";

/*
 * The built-in conflict resolvers. Each is consulted only when the writer's
 * base version is stale, works on top-level fields, treats a `null` change as
 * "delete this field" and a change whose value is `undefined` as no change
 * (it cannot survive JSON anyway), and never mutates its input.
 */

/**
 * The `resolve` functions of the built-in resolvers: pure, so the engine may
 * hand them the versions its store shares (`ENGINE_READS`) and commit
 * what they return as its own. Any other resolver is application code and
 * gets copies.
 */
const BUILT_IN = new WeakSet<ConflictResolver["resolve"]>();

/** Whether `resolve` is a built-in resolver's, which never mutates its input nor keeps its output. */
export function isBuiltInResolve(resolve: ConflictResolver["resolve"]): boolean {
  return BUILT_IN.has(resolve);
}

function builtIn(name: string, resolve: ConflictResolver["resolve"]): ConflictResolver {
  BUILT_IN.add(resolve);
  return { name, resolve };
}

const resolveLastWriteWins = ({ current, changes }: ResolveInput): Resolution => ({ outcome: "merged", data: applyChanges(current, changes) });

/**
 * The three-way resolvers: each changed field whose current value differs
 * from the incoming one is a conflict, unless `trustBase` and the field is
 * unchanged since the writer's base.
 */
const resolveByField =
  (trustBase: boolean) =>
  ({ base, current, changes }: ResolveInput): Resolution => {
    const conflicts: FieldConflict[] = [];
    for (const [field, incoming] of changedFields(changes)) {
      const currentValue = ownField(current, field);
      if (jsonEqual(currentValue, afterChange(incoming))) continue;
      if (trustBase && base !== null && jsonEqual(ownField(base, field), currentValue)) continue;
      conflicts.push({ field, base: base === null ? undefined : ownField(base, field), current: currentValue, incoming });
    }
    return conflicts.length > 0 ? { outcome: "conflict", conflicts } : { outcome: "merged", data: applyChanges(current, changes) };
  };

const resolveFieldMerge = resolveByField(true);
const resolveRejectOnConflict = resolveByField(false);

/**
 * The last writer wins: the changes are applied on top of the latest
 * version, whatever happened since the writer's base. Fields the writer did
 * not touch keep their current values, so only overlapping edits are lost.
 * Choose it for data where a stale overwrite is harmless (a crew's current
 * location, a device setting).
 */
export function lastWriteWins(): ConflictResolver {
  return builtIn("lastWriteWins", resolveLastWriteWins);
}

/**
 * A three-way merge per top-level field, the default. A changed field is
 * taken from the writer when nobody else changed it since the writer's base,
 * or when the other writer already set the same value; otherwise it is a
 * conflict. Two site managers editing a project's `budget` and its `name`
 * both get their edit; two editing `budget` to different amounts get a
 * conflict naming `budget` with all three values.
 *
 * When the base version is no longer in history (`base: null`), nothing can
 * prove a field was untouched, so every changed field whose current value
 * differs from the incoming one is a conflict.
 */
export function fieldMerge(): ConflictResolver {
  return builtIn("fieldMerge", resolveFieldMerge);
}

/**
 * Refuses every stale write that would change something: the writer must
 * fetch the latest version and decide again. Each changed field whose current
 * value differs from the incoming one is listed, so the client can show what
 * the writer was about to overwrite or set. A stale write that changes nothing
 * (every field already holds the incoming value) is merged, because refusing
 * it would make the client retry a no-op. Choose it for approvals and money,
 * where a person must see the latest state before committing.
 */
export function rejectOnConflict(): ConflictResolver {
  return builtIn("rejectOnConflict", resolveRejectOnConflict);
}

/** The writer's changes as `[field, value]`, skipping `undefined` values. */
function changedFields(changes: DocumentData): Array<[string, unknown]> {
  return Object.entries(changes).filter(([, value]) => value !== undefined);
}


/** The value a field holds after a change: `null` deletes it. */
function afterChange(incoming: unknown): unknown {
  return incoming === null ? undefined : incoming;
}
