import { isTrussError, TrussError } from "./errors.js";
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

/** Application data checked and copied where the application handed it over. */
export interface JsonSnapshot {
  /**
   * A copy of the data as a client will receive it (a `Date` as its ISO
   * string, `undefined` fields left out): nothing the caller does to its own
   * value afterwards reaches it. `undefined` for `undefined`.
   */
  readonly value: unknown;
  /** The data as JSON text; `undefined` for `undefined`. */
  readonly json: string | undefined;
}

/**
 * Checks data an application call was given (`toUser`, `toCompany`,
 * `engine.documents.update`) and copies it, synchronously, before the call
 * returns: the application may change or reuse its object the moment it
 * gets its promise, and what is stored and sent must be what it passed.
 * Every value JSON would drop or change silently is refused, with the path
 * where it sits: a function, a symbol, a BigInt, `NaN` or `Infinity`, binary
 * data (a `Buffer`, a typed array), a `Map` or `Set`, a cycle. `undefined`
 * is what JSON makes of it (a field left out, `null` in an array).
 *
 * @throws TrussError `INVALID_PAYLOAD` for a value JSON cannot carry or
 * nested past `maxDepth`, `PAYLOAD_TOO_LARGE` past `maxBytes` of JSON.
 */
export function jsonSnapshot(value: unknown, limits: { maxDepth: number; maxBytes: number }, what: string): JsonSnapshot {
  const snapshot = jsonCopy(value, limits, what);
  if (typeof snapshot.value === "object" && snapshot.value !== null) keepJson(snapshot.value, snapshot.json!);
  return snapshot;
}

/**
 * {@link jsonSnapshot} without recording the text for {@link snapshotJson}:
 * for a caller that calls its store at once and hands the text over with
 * {@link handJson} instead, which costs no `WeakMap` entry.
 */
export function jsonCopy(value: unknown, limits: { maxDepth: number; maxBytes: number }, what: string): JsonSnapshot {
  const json = checkedJson(value, limits, what);
  if (json === undefined) return { value: undefined, json };
  return { value: JSON.parse(json) as unknown, json };
}

/**
 * The checks of {@link jsonSnapshot} and the data's JSON text, without the
 * copy: for a caller that keeps only the text (the outbox writes it to a row).
 *
 * @throws TrussError as {@link jsonSnapshot} does.
 */
export function checkedJson(value: unknown, limits: { maxDepth: number; maxBytes: number }, what: string): string | undefined {
  try {
    assertJsonValue(value, limits, what);
  } catch (error) {
    // A getter or a proxy trap that threw while being read.
    throw isTrussError(error) ? error : encodeFailure(error, what);
  }
  return encodeJson(value, limits.maxBytes, what);
}

/**
 * Records `json` as the text of `value`, an object only the engine holds and
 * will not change again, so that {@link snapshotJson} hands it to a store.
 */
function keepJson(value: object, json: string): void {
  SNAPSHOT_JSON.set(value, json);
}

/**
 * The JSON text of every object {@link jsonSnapshot} made, while the object
 * lives. A snapshot is the engine's own copy, which nothing else holds, so
 * its text stays true for as long as the engine does not change it.
 */
const SNAPSHOT_JSON = new WeakMap<object, string>();

/** The snapshot being handed to a store by {@link handJson}, and its text; `null` between calls. */
let handed: object | null = null;
let handedJson = "";

/**
 * Calls `call` (a store call) with `json` known as the text of `value`, the
 * engine's own copy from {@link jsonCopy}, for {@link snapshotJson} to find
 * while the store runs synchronously; forgotten as soon as `call` returns.
 * A store that reads it later, after an await, encodes the data itself.
 */
export function handJson<T>(value: unknown, json: string | undefined, call: () => T): T {
  if (typeof value !== "object" || value === null || json === undefined) return call();
  const outer = handed;
  const outerJson = handedJson;
  handed = value;
  handedJson = json;
  try {
    return call();
  } finally {
    handed = outer;
    handedJson = outerJson;
  }
}

/**
 * The JSON text of `value` when it is a snapshot the engine made (checked,
 * copied and encoded at the application's call) and recorded, or is handing
 * to a store during the store call, else `undefined`. The
 * in-memory stores use it to keep the text without encoding the data again,
 * and to hand the snapshot itself back rather than a decoded copy of it.
 */
export function snapshotJson(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  return value === handed ? handedJson : SNAPSHOT_JSON.get(value);
}

/** One object or array being checked, and where it sits, to name the path of a refused value. */
interface Visit {
  node: object;
  depth: number;
  parent: Visit | null;
  key: string | number | null;
}

/** Built-ins whose JSON is `{}` whatever they hold. */
const OPAQUE: ReadonlyArray<[new (...args: never[]) => object, string]> = [
  [Map, "a Map"],
  [Set, "a Set"],
  [WeakMap, "a WeakMap"],
  [WeakSet, "a WeakSet"],
  [Promise, "a Promise"],
  [RegExp, "a RegExp"],
  [Error, "an Error"],
];

/**
 * Walks `value` as `JSON.stringify` would (own enumerable keys, `toJSON`
 * applied), iteratively so a hostile depth cannot overflow the stack, and
 * throws at the first value JSON cannot carry. Every value visited counts
 * towards `maxBytes` (each takes at least a byte of JSON), so data that
 * shares one object many times over is refused before the walk grows.
 */
function assertJsonValue(value: unknown, { maxDepth, maxBytes }: { maxDepth: number; maxBytes: number }, what: string): void {
  const root = jsonable(value, null, null, what);
  if (typeof root !== "object" || root === null) return;
  const stack: Visit[] = [{ node: root, depth: 1, parent: null, key: null }];
  let values = 1;
  while (stack.length > 0) {
    const visit = stack.pop()!;
    if (visit.depth > maxDepth) {
      let ancestor = visit.parent;
      while (ancestor && ancestor.node !== visit.node) ancestor = ancestor.parent;
      if (ancestor) throw new TrussError("INVALID_PAYLOAD", `${what} refers to itself at ${pathOf(visit.parent, visit.key)}; JSON cannot carry a cycle.`);
      throw new TrussError("INVALID_PAYLOAD", `${what} is nested more than ${maxDepth} levels deep; flatten it.`);
    }
    const { node } = visit;
    const keys = Array.isArray(node) ? null : Object.keys(node);
    values += keys ? keys.length : (node as unknown[]).length;
    if (values > maxBytes) throw new TrussError("PAYLOAD_TOO_LARGE", `${what} holds more values than fit in ${maxBytes} bytes of JSON.`);
    if (keys) for (const key of keys) visitChild(stack, visit, (node as Record<string, unknown>)[key], key, what);
    else for (let index = 0; index < (node as unknown[]).length; index++) visitChild(stack, visit, (node as unknown[])[index], index, what);
  }
}

/** Checks one value inside `visit`'s node; an object or array is queued to be walked in turn. */
function visitChild(stack: Visit[], visit: Visit, value: unknown, key: string | number, what: string): void {
  // Strings, booleans and finite numbers need nothing more: the common case, without a call.
  if (typeof value === "string" || typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value))) return;
  const child = jsonable(value, visit, key, what);
  if (typeof child === "object" && child !== null) stack.push({ node: child, depth: visit.depth + 1, parent: visit, key });
}

/** The value as JSON will see it (after `toJSON`); throws when JSON cannot carry it. */
function jsonable(value: unknown, parent: Visit | null, key: string | number | null, what: string): unknown {
  const refuse = (kind: string, hint?: string) => {
    const at = parent === null ? "" : ` at ${pathOf(parent, key)}`;
    return new TrussError("INVALID_PAYLOAD", `${what} holds ${kind}${at}, which JSON cannot carry${hint ? `; ${hint}` : ""}.`);
  };
  switch (typeof value) {
    case "function":
      throw refuse("a function");
    case "symbol":
      throw refuse("a symbol");
    case "bigint":
      throw refuse("a BigInt", "send it as a string");
    case "number":
      if (!Number.isFinite(value)) throw refuse(String(value));
      return value;
    case "object": {
      if (value === null) return value;
      // A plain object or array (most data) is none of the opaque built-ins: only a `toJSON` of its own can change it.
      const prototype = Object.getPrototypeOf(value);
      if ((prototype === Object.prototype || prototype === Array.prototype) && !ArrayBuffer.isView(value)) return withToJson(value, parent, key, what);
      if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) throw refuse("binary data", "send it as base64 text");
      for (const [type, kind] of OPAQUE) if (value instanceof type) throw refuse(kind);
      return withToJson(value, parent, key, what);
    }
    default:
      return value;
  }
}

/** An object as JSON will see it: what its `toJSON` returns (checked in turn), or the object itself. */
function withToJson(value: object, parent: Visit | null, key: string | number | null, what: string): unknown {
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  return typeof toJSON === "function" ? jsonable(toJSON.call(value, key === null ? "" : String(key)), parent, key, what) : value;
}

/** `items[3].note`, or `["a b"]` for a key that is not an identifier; keys are cut at 40 characters. */
function pathOf(parent: Visit | null, key: string | number | null): string {
  const parts: string[] = [];
  for (let visit: Visit | null = parent, step = key; visit !== null && step !== null; step = visit.key, visit = visit.parent) {
    parts.push(typeof step === "number" ? `[${step}]` : /^[A-Za-z_$][\w$]*$/.test(step) ? `.${step.slice(0, 40)}` : `[${JSON.stringify(step.slice(0, 40))}]`);
  }
  const path = parts.reverse().join("");
  return path.startsWith(".") ? path.slice(1) : path;
}

/**
 * Whether a string is well-formed Unicode: no lone surrogate, which no
 * encoding (UTF-8, a URI, a Redis key) can carry. Ids that name a document,
 * a user or a company must be. `String#isWellFormed` is native from Node.js 20,
 * the oldest release Truss supports.
 */
export function isWellFormedText(value: string): boolean {
  return (value as string & { isWellFormed(): boolean }).isWellFormed();
}

/**
 * Checks the ids a server-side call names a tenant (and user) with: each a
 * non-empty string of well-formed Unicode, so it can key a room, a Redis key
 * or a store, and names someone a token can (a token's ids are never empty:
 * a message for an empty user id could never be delivered).
 *
 * @throws TypeError naming the call and the id.
 */
export function assertIds(call: string, ids: Record<string, unknown>): void {
  for (const name in ids) {
    const value = ids[name];
    if (!isId(value)) {
      const got =
        typeof value !== "string" ? typeof value : value.length === 0 ? "an empty string" : value.length > MAX_ID_LENGTH ? `${value.length} characters` : "a lone surrogate";
      throw new TypeError(`${call}: ${name} must be a non-empty string of well-formed Unicode (no lone surrogates) of at most ${MAX_ID_LENGTH} characters; got ${got}.`);
    }
  }
}

/**
 * The longest company, user or device id the engine takes, in UTF-16 units:
 * ids key rooms, store keys and index rows, so a megabyte id from an app
 * route or a token would be stored with every message, outside every byte cap.
 */
export const MAX_ID_LENGTH = 256;

/** Whether `value` can be a company, user or device id: a non-empty string of well-formed Unicode of at most {@link MAX_ID_LENGTH}. */
export function isId(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_ID_LENGTH && isWellFormedText(value);
}
