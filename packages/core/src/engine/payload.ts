import { TrussError } from "../errors.js";
import { encodeFailure } from "./failures.js";

/**
 * Refuses a value nested deeper than `maxDepth` objects and arrays. Iterative,
 * so a hostile payload cannot overflow the stack while being checked; it
 * stops at the first level past the limit, so the cost is bounded by the
 * payload's size, which the transport already capped.
 *
 * @throws TrussError `INVALID_PAYLOAD` naming `what` and the limit.
 */
export function assertDepth(value: unknown, maxDepth: number, what: string): void {
  if (typeof value !== "object" || value === null) return;
  const stack: Array<[object, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (depth > maxDepth) {
      throw new TrussError("INVALID_PAYLOAD", `${what} is nested more than ${maxDepth} levels deep; flatten it.`);
    }
    if (ArrayBuffer.isView(node) || node instanceof ArrayBuffer) continue;
    const children: unknown[] = Array.isArray(node) ? node : Object.values(node);
    for (const child of children) {
      if (typeof child === "object" && child !== null) stack.push([child, depth + 1]);
    }
  }
}

/**
 * The UTF-8 size of `value` as JSON, checked against `maxBytes`. Values JSON
 * cannot carry (a BigInt, a cycle) are refused here, before any store sees
 * them, instead of failing later in an encoder where nobody can answer.
 *
 * @returns the encoded JSON (`undefined` for `undefined`).
 * @throws TrussError `INVALID_PAYLOAD` for a value that is not JSON, `PAYLOAD_TOO_LARGE` past `maxBytes`.
 */
export function encodeJson(value: unknown, maxBytes: number, what: string): string | undefined {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    throw encodeFailure(error, what);
  }
  // A UTF-16 unit is at most three UTF-8 bytes: measure only when that bound is not enough.
  if (json !== undefined && json.length * 3 > maxBytes) {
    const bytes = Buffer.byteLength(json);
    if (bytes > maxBytes) throw new TrussError("PAYLOAD_TOO_LARGE", `${what} is ${bytes} bytes as JSON; the limit is ${maxBytes}.`);
  }
  return json;
}

const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * Whether a string is well-formed Unicode: no lone surrogate, which no
 * encoding (UTF-8, a URI, a Redis key) can carry. Ids that name a document,
 * a user or a company must be.
 */
export function isWellFormedText(value: string): boolean {
  return !LONE_SURROGATE.test(value);
}

/**
 * Checks the ids a server-side call names a tenant (and user) with: each a
 * string of well-formed Unicode, so it can key a room, a Redis key or a store.
 *
 * @throws TypeError naming the call and the id.
 */
export function assertIds(call: string, ids: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(ids)) {
    if (typeof value !== "string" || !isWellFormedText(value)) {
      throw new TypeError(`${call}: ${name} must be a string of well-formed Unicode (no lone surrogates); got ${typeof value === "string" ? "a lone surrogate" : typeof value}.`);
    }
  }
}
