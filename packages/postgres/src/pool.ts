import type { Pool } from "pg";

/**
 * Keeps a PostgreSQL restart from ending the process. An idle pooled client
 * whose server went away emits `error` on the pool, and an `error` event
 * with no listener throws. The pool drops that client either way and
 * connects afresh on the next call. Added only when the application has no
 * listener of its own.
 */
export function guardPoolErrors(pool: Pool): void {
  if (pool.listenerCount("error") === 0) pool.on("error", () => undefined);
}
