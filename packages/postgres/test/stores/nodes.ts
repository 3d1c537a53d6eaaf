import pg from "pg";
import { afterAll, beforeAll, describe } from "vitest";
import { freshSchema, SHARED_POSTGRES, type FreshSchema } from "../support/postgres.js";

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

/**
 * A conformance suite on a schema of its own, created before the suite and
 * dropped after it: `register` gets a pool per store and the schema's name.
 */
export function suiteOnFreshSchema(name: string, register: (stores: ReturnType<typeof poolPerStore>, schema: () => string) => void): void {
  describe(name, () => {
    let db: FreshSchema;
    beforeAll(async () => {
      db = await freshSchema();
    });
    afterAll(async () => {
      await db?.drop();
    });
    register(poolPerStore(), () => db.schema);
  });
}
