import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Pool } from "pg";
import { quotedSchema } from "./schema.js";

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /**
   * The schema the tables go in; created when missing. Give the stores and
   * the outbox the same one.
   * @default "truss"
   */
  schema?: string;
}

/** One migration file shipped with the package. */
export interface Migration {
  /** Its number, from the file name: `001_outbox.sql` is 1. */
  readonly version: number;
  /** The file name. */
  readonly name: string;
  /** Its SQL, with `__SCHEMA__` where the quoted schema name goes. */
  readonly sql: string;
}

/**
 * The shipped SQL: `dist/migrations/` in the published package (the build
 * copies it there), `migrations/` beside `src/` when run from the sources.
 */
function migrationsDir(): string {
  const built = fileURLToPath(new URL("./migrations/", import.meta.url));
  return existsSync(built) ? built : fileURLToPath(new URL("../migrations/", import.meta.url));
}

/**
 * The SQL migrations shipped in the package (`dist/migrations/`), in order: for
 * an application that runs its migrations with its own tool (replace
 * `__SCHEMA__` with the quoted schema name and record the versions applied;
 * with a schema name holding `$$`, also quote the function bodies with a
 * dollar-quote tag other than `$$`).
 */
export async function migrations(): Promise<Migration[]> {
  const dir = migrationsDir();
  const names = (await readdir(dir)).filter((name) => /^\d+_[\w-]+\.sql$/.test(name)).sort();
  return Promise.all(names.map(async (name) => ({ version: Number.parseInt(name, 10), name, sql: await readFile(join(dir, name), "utf8") })));
}

/**
 * A migration's SQL for the quoted `schema`. Replaced by functions, as `$$`
 * in a replacement string means `$`. Function bodies are quoted `$$ ... $$`,
 * which a schema name holding `$$` would end early: they are then quoted
 * with a tag the name does not hold.
 */
function sqlIn(schema: string, sql: string): string {
  const quote = schema.includes("$$") ? unusedDollarTag(schema) : "$$";
  return sql.replaceAll("$$", () => quote).replaceAll("__SCHEMA__", () => schema);
}

/** A dollar-quote tag (`$truss0$`, `$truss1$`, ...) that `text` does not hold. */
function unusedDollarTag(text: string): string {
  for (let n = 0; ; n++) {
    const tag = `$truss${n}$`;
    if (!text.includes(tag)) return tag;
  }
}

/**
 * Creates or updates Truss's tables in `schema`: applies, in order, each
 * shipped migration not yet recorded in `<schema>.truss_migrations`, each in
 * its own transaction with its record. Idempotent and safe to run from every
 * node at start-up at once: a session advisory lock lets one run at a time,
 * and the others then find nothing left to do. Needs no extension.
 *
 * @returns the file names applied by this call (none when up to date).
 */
export async function migrate(pool: Pick<Pool, "connect">, options: MigrateOptions = {}): Promise<string[]> {
  const schema = quotedSchema("migrate(pool, { schema })", options.schema);
  const files = await migrations();
  const client = await pool.connect();
  const applied: string[] = [];
  let failure: Error | undefined;
  try {
    // One lock per schema: migrating two schemas at once is fine.
    await client.query("SELECT pg_advisory_lock(hashtext($1))", [`truss:migrate:${schema}`]);
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${schema}.truss_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
      const { rows } = await client.query<{ version: number }>(`SELECT version FROM ${schema}.truss_migrations`);
      const done = new Set(rows.map((row) => row.version));
      for (const migration of files) {
        if (done.has(migration.version)) continue;
        await client.query("BEGIN");
        try {
          await client.query(sqlIn(schema, migration.sql));
          await client.query(`INSERT INTO ${schema}.truss_migrations (version, name) VALUES ($1, $2)`, [migration.version, migration.name]);
          await client.query("COMMIT");
        } catch (error) {
          await client.query("ROLLBACK").catch(() => undefined);
          throw new Error(`migrate: ${migration.name} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
        }
        applied.push(migration.name);
      }
    } finally {
      await client.query("SELECT pg_advisory_unlock(hashtext($1))", [`truss:migrate:${schema}`]).catch(() => undefined);
    }
  } catch (error) {
    failure = error instanceof Error ? error : new Error(String(error));
    throw failure;
  } finally {
    // A connection that failed mid-way is closed rather than reused.
    client.release(failure);
  }
  return applied;
}
