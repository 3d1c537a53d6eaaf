/**
 * Refuses a function or symbol in a top-level field of `data`, which
 * `JSON.stringify` would drop silently, so a store never loses a field
 * without saying so. Top-level fields only: checking every value (a
 * replacer) would make each write several times slower, and the engine
 * checks what it is given before any store sees it.
 *
 * @throws TypeError naming the field, prefixed with `who`.
 */
export function refuseNonJsonFields(data: unknown, who: string): void {
  if (typeof data === "function" || typeof data === "symbol") throw new TypeError(`${who}: data is a ${typeof data}, which JSON cannot carry`);
  if (typeof data !== "object" || data === null) return;
  for (const field in data) {
    const kind = typeof (data as Record<string, unknown>)[field];
    if (kind === "function" || kind === "symbol") throw new TypeError(`${who}: field "${field}" holds a ${kind}, which JSON cannot carry`);
  }
}
