import type { SuiteOptions } from "./runner.js";

/**
 * Makes the store under test lose all its data, as a restart of a store that
 * keeps nothing on disk does (a memory store created anew, a Redis restarted
 * without persistence, a database emptied), and resolves with the handle to
 * use from then on: `store` itself once it works again, or a new one.
 * `options` are the ones the case's store was created with.
 */
export type RestartEmpty<T, TOptions = void> = (store: T, options: TOptions) => T | Promise<T>;

/**
 * Restarts `store` empty and runs `body` with the handle `restart` gave. A new
 * handle is torn down afterwards, pass or fail, as the case's own instance
 * is; a failure of the body is the one reported.
 */
export async function afterRestartEmpty<T, TOptions>(
  store: T,
  options: TOptions,
  restart: RestartEmpty<T, TOptions>,
  teardown: SuiteOptions<T>["teardown"],
  body: (restarted: T) => Promise<void>,
): Promise<void> {
  const restarted = await restart(store, options);
  let failure: { error: unknown } | undefined;
  try {
    await body(restarted);
  } catch (error) {
    failure = { error };
  }
  if (restarted !== store) {
    try {
      await teardown?.(restarted);
    } catch (error) {
      failure ??= { error };
    }
  }
  if (failure) throw failure.error;
}
