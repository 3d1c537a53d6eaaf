import type { DocumentData } from "./store.js";

/**
 * A new object: `current` with `changes` applied (`null` removes a field,
 * `undefined` leaves it), the fields of `current` first, in their order,
 * then the new ones in the order of `changes`. A `__proto__` key from a
 * client is stored as data instead of replacing the object's prototype.
 * Built field by field: it runs on every commit, and pairs, a `Map` and its
 * iterators for each were most of what a commit allocated here.
 */
export function applyChanges(current: DocumentData, changes: DocumentData): DocumentData {
  const next: DocumentData = {};
  for (const field of Object.keys(current)) {
    const incoming = ownField(changes, field);
    if (incoming === null) continue;
    setField(next, field, incoming === undefined ? current[field] : incoming);
  }
  for (const field of Object.keys(changes)) {
    if (isOwnField(current, field)) continue;
    const incoming = changes[field];
    if (incoming !== undefined && incoming !== null) setField(next, field, incoming);
  }
  return next;
}

const isOwnField = (data: DocumentData, field: string): boolean => Object.prototype.propertyIsEnumerable.call(data, field);

/** The value of an own enumerable field, else `undefined`: `constructor` or `__proto__` never read through the prototype. */
export function ownField(data: DocumentData, field: string): unknown {
  return isOwnField(data, field) ? data[field] : undefined;
}

/** Sets a field as data, `__proto__` included. */
function setField(data: DocumentData, field: string, value: unknown): void {
  if (field === "__proto__") Object.defineProperty(data, field, { value, writable: true, enumerable: true, configurable: true });
  else data[field] = value;
}
