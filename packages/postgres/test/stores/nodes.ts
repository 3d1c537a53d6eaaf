import pg from "pg";
import { SHARED_POSTGRES } from "../support/postgres.js";

/**
 * A pool of its own for each store a conformance suite creates, as each
 * engine node has, so the suites' "two nodes" race over separate pools;
 * `teardown` ends the store's pool.
 */
export function poolPerStore() {
  const pools = new Map<object, pg.Pool>();
  return {
    /** Creates a store on a fresh pool and remembers the pool for teardown. */
    create<T extends object>(build: (pool: pg.Pool) => T): T {
      const pool = new pg.Pool({ ...SHARED_POSTGRES, max: 10 });
      const store = build(pool);
      pools.set(store, pool);
      return store;
    },
    async teardown(store: object): Promise<void> {
      const pool = pools.get(store);
      pools.delete(store);
      await pool?.end();
    },
  };
}
