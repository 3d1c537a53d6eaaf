/**
 * What an implementation of a contract (a store, a resolver) must have, named
 * next to each contract and checked when the engine is created, so a plain
 * object passed as a store fails at start-up with the missing methods named,
 * not at its first use with "the inbox store failed on the server".
 *
 * @module
 */

/** The members of `T` that are not optional (`ping?` is left out). */
export type RequiredMethods<T> = { [K in keyof T]-?: {} extends Pick<T, K> ? never : K }[keyof T] & string;

/**
 * The names of the methods every implementation of `T` must have. The
 * record is checked by TypeScript to name each required member exactly once,
 * so a method added to the contract fails the type-check until it is named.
 *
 * @example
 * ```ts
 * export const INBOX_STORE_METHODS = methodsOf<InboxStore>({ append: true, read: true, ack: true, cursor: true, dropped: true });
 * ```
 */
export function methodsOf<T>(methods: { readonly [K in RequiredMethods<T>]: true }): ReadonlyArray<RequiredMethods<T>> {
  return Object.freeze(Object.keys(methods)) as ReadonlyArray<RequiredMethods<T>>;
}

/**
 * Refuses a value that lacks any of `methods`.
 *
 * @param what - the option, for the message (`the inbox store (\`inbox\`)`).
 * @param contract - the interface it must implement (`InboxStore`).
 * @throws TypeError naming `what`, the contract and every missing method.
 */
export function assertImplements(what: string, contract: string, value: unknown, methods: readonly string[]): void {
  if ((typeof value !== "object" && typeof value !== "function") || value === null) {
    throw new TypeError(`${what} must be an object implementing ${contract} (${methods.join(", ")}); got ${value === null ? "null" : typeof value}.`);
  }
  const missing = methods.filter((method) => typeof (value as Record<string, unknown>)[method] !== "function");
  if (missing.length > 0) {
    throw new TypeError(`${what} is missing ${missing.map((method) => `${method}()`).join(", ")}; ${contract} requires ${methods.join(", ")}.`);
  }
}

/** Whether an answer is a promise (or any thenable); reading `then` may throw, as any getter of an answer may. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function";
}
