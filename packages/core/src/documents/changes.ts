import type { DocumentData } from "./store.js";

/**
 * A new object: `current` with `changes` applied. Built with
 * `Object.fromEntries` so a `__proto__` key from a client is stored as data
 * instead of replacing the object's prototype.
 */
export function applyChanges(current: DocumentData, changes: DocumentData): DocumentData {
  const fields = new Map(Object.entries(current));
  for (const [field, incoming] of Object.entries(changes)) {
    if (incoming === undefined) continue;
    if (incoming === null) fields.delete(field);
    else fields.set(field, incoming);
  }
  return Object.fromEntries(fields);
}
