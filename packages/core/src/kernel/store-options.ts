/**
 * Checks a store's resolved options: each must be a positive safe integer.
 * Every store resolver ends with it, so all stores refuse the same values
 * with the same message.
 *
 * @param store - the store's name, for the error.
 * @throws RangeError naming the first option that is not a positive integer.
 */
export function checkPositiveIntegers<T extends Record<string, number>>(store: string, options: T): T {
  for (const [name, value] of Object.entries(options)) {
    if (!(Number.isSafeInteger(value) && value > 0)) throw new RangeError(`${store}: ${name} must be a positive integer, got ${value}`);
  }
  return options;
}

/** What each in-memory store holds for one company by default: 64 MiB (documents with their history, inbox messages, stream entries). */
export const DEFAULT_MEMORY_BYTES_PER_COMPANY = 64 * 1024 * 1024;
