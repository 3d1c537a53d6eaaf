/**
 * Structural equality for JSON values (what documents hold): primitives by
 * value, arrays element by element in order, objects key by key regardless of
 * key order. A key whose value is `undefined` counts as absent, as it would
 * after a JSON round trip, so `{ a: 1 }` equals `{ a: 1, b: undefined }`.
 *
 * Resolvers use it to tell "someone else changed this field" from "the same
 * value arrived twice"; reference equality would call every parsed payload a
 * change. Non-JSON values (Dates, Maps, class instances) are compared as plain
 * objects by their own enumerable keys, which is enough for data that came off
 * the wire.
 */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) {
    // NaN is not JSON, but two NaNs should not read as a conflict either.
    return typeof a === "number" && typeof b === "number" && Number.isNaN(a) && Number.isNaN(b);
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, index) => jsonEqual(item, b[index]));
  }
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const leftKeys = Object.keys(left).filter((key) => left[key] !== undefined);
  const rightKeys = Object.keys(right).filter((key) => right[key] !== undefined);
  return (
    leftKeys.length === rightKeys.length &&
    leftKeys.every((key) => Object.prototype.hasOwnProperty.call(right, key) && jsonEqual(left[key], right[key]))
  );
}
