/**
 * A private PostgreSQL database per test file, on the server every machine of
 * the project runs (127.0.0.1:5432, user postgres, trust authentication),
 * dropped when the file is done.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";

/** The server's `test` database, from which each file creates its own. */
export const ADMIN_URL = process.env.TRUSS_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A database of its own for one test file. */
export interface TestDatabase {
  /** Its URL, for `DATABASE_URL` / `buildApp({ databaseUrl })`. */
  url: string;
  /** Its name. */
  name: string;
  /** Drops it, closing any connection still open to it. */
  drop(): Promise<void>;
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Creates an empty database named after `label` and a random suffix. */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const name = `erp_${label.replace(/[^a-z0-9_]/gi, "_").toLowerCase()}_${randomBytes(4).toString("hex")}`;
  await admin((client) => client.query(`CREATE DATABASE "${name}"`));
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: () => admin((client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined),
  };
}
