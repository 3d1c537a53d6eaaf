import { DOCUMENT_DELTA_MIN_SAVING_BYTES, type DocumentDelta } from "@truss/protocol";
import type { DocumentData } from "./store.js";

/**
 * The delta from `before` to `after`, top-level field by field, comparing
 * values by reference: a field whose value is the same object (what
 * `applyChanges` and the resolvers keep for a field they do not touch) is
 * left out, any other field of `after` is set whole, and a field `after`
 * lacks is unset. Never a deep comparison, so the cost grows with the number
 * of fields, not with their size; a field set to an equal copy is sent
 * again, which is harmless.
 */
export function deltaBetween(before: DocumentData, after: DocumentData): DocumentDelta {
  const set: Array<[string, unknown]> = [];
  const unset: string[] = [];
  for (const field of Object.keys(after)) {
    if (!Object.hasOwn(before, field) || before[field] !== after[field]) set.push([field, after[field]]);
  }
  for (const field of Object.keys(before)) if (!Object.hasOwn(after, field)) unset.push(field);
  return deltaOf(set, unset);
}

/**
 * The delta from `before` to `after` when the changed fields are known
 * already (a rollback compares them itself): each of `fields` is set to its
 * value in `after`, or unset when `after` lacks it.
 */
export function deltaOfFields(after: DocumentData, fields: readonly string[]): DocumentDelta {
  const set: Array<[string, unknown]> = [];
  const unset: string[] = [];
  for (const field of fields) {
    if (Object.hasOwn(after, field)) set.push([field, after[field]]);
    else unset.push(field);
  }
  return deltaOf(set, unset);
}

/**
 * Whether the delta is worth sending instead of the whole document: it must
 * save at least {@link DOCUMENT_DELTA_MIN_SAVING_BYTES} bytes of JSON. Only
 * the delta is encoded here; `documentBytes` is the document's size, which
 * the engine measured when it checked the document's limit.
 */
export function deltaPays(delta: DocumentDelta, documentBytes: number): boolean {
  // No delta can save enough on a document this small: skip encoding it.
  if (documentBytes < DOCUMENT_DELTA_MIN_SAVING_BYTES) return false;
  return documentBytes - Buffer.byteLength(JSON.stringify(delta)) >= DOCUMENT_DELTA_MIN_SAVING_BYTES;
}

/** Built with `Object.fromEntries`, so a `__proto__` field is carried as data. */
function deltaOf(set: Array<[string, unknown]>, unset: string[]): DocumentDelta {
  return {
    ...(set.length > 0 ? { set: Object.fromEntries(set) as DocumentData } : {}),
    ...(unset.length > 0 ? { unset } : {}),
  };
}
