/**
 * Idempotency keys, as every store that takes one checks them (the inbox's
 * `toUser`, the streams' `toCompany` and `toTopic`, the outbox's rows).
 */

import { isWellFormedText } from "./payload.js";

/** The longest idempotency key, in characters (Unicode code points). */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 200;

/**
 * Whether `value` can be an idempotency key: a non-empty string of
 * well-formed Unicode (no lone surrogate) of at most
 * {@link MAX_IDEMPOTENCY_KEY_LENGTH} characters.
 */
export function isIdempotencyKey(value: unknown): value is string {
  if (typeof value !== "string" || value.length === 0 || !isWellFormedText(value)) return false;
  // A code point is one or two UTF-16 units, so only lengths in between need counting.
  if (value.length <= MAX_IDEMPOTENCY_KEY_LENGTH) return true;
  if (value.length > 2 * MAX_IDEMPOTENCY_KEY_LENGTH) return false;
  let characters = 0;
  for (const _ of value) characters += 1;
  return characters <= MAX_IDEMPOTENCY_KEY_LENGTH;
}

/**
 * The idempotency key of append options, or `undefined` without one; for
 * store implementations.
 *
 * @throws TypeError naming `who` when the options or the key are malformed.
 */
export function idempotencyKeyOf(options: { idempotencyKey?: string } | undefined, who: string): string | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${who}: options must be an object, got ${options === null ? "null" : typeof options}`);
  }
  const key = options.idempotencyKey;
  if (key === undefined) return undefined;
  if (!isIdempotencyKey(key)) {
    throw new TypeError(
      `${who}: idempotencyKey must be a non-empty string of well-formed Unicode of at most ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`,
    );
  }
  return key;
}
