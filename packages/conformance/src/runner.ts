/**
 * The test function a suite registers its cases with: vitest's and jest's
 * `test`/`it`, or `node:test`'s `test`, fit as they are. The suites never
 * import a test framework; they assert with `node:assert/strict`.
 */
export type TestFunction = (name: string, fn: () => Promise<void> | void, timeoutMs?: number) => unknown;

/** Creates the implementation under test; called once per test so state never leaks between tests. */
export type Factory<T, TOptions = void> = (options: TOptions) => T | Promise<T>;

/** Options every suite accepts. */
export interface SuiteOptions<T> {
  /** Called after each test with the instance it created (close connections, drop keys). */
  teardown?: (instance: T) => void | Promise<void>;
  /** Prefix for test names, default the contract's name. */
  prefix?: string;
}
