import { execFile } from "node:child_process";
import { randomInt, randomUUID } from "node:crypto";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { migrate } from "../../src/migrate.js";

const run = promisify(execFile);

/** The shared test server: 127.0.0.1:5432, trust authentication, database `test`. */
export const SHARED_POSTGRES = { host: "127.0.0.1", port: 5432, user: "postgres", database: "test" } as const;

/** A schema of its own for one test file, with every migration applied. */
export interface FreshSchema {
  /** A pool on the server the schema lives in. */
  pool: pg.Pool;
  /** The schema's name (unquoted). */
  schema: string;
  /** Drops the schema and ends the pool. */
  drop(): Promise<void>;
}

/**
 * Creates a schema with a random name on the shared server (or the server
 * `connection` names) and runs `migrate()` in it; `drop()` removes it.
 */
export async function freshSchema(connection: pg.PoolConfig = SHARED_POSTGRES, poolOptions: pg.PoolConfig = {}): Promise<FreshSchema> {
  const schema = `t_${randomUUID().replaceAll("-", "")}`;
  const pool = new pg.Pool({ ...connection, max: 20, ...poolOptions });
  // An idle client whose server went away errors on the pool; tests that cut connections expect it.
  pool.on("error", () => undefined);
  await migrate(pool, { schema });
  return {
    pool,
    schema,
    async drop() {
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pool.end();
    },
  };
}

/** `length` random CJK characters (3 bytes each in UTF-8): text PostgreSQL cannot compress to fit an index row. */
export function randomCjk(length: number): string {
  return Array.from({ length }, () => String.fromCharCode(0x4e00 + randomInt(20_000))).join("");
}

/** A PostgreSQL server of the test's own, to stop, kill and restart. */
export interface PrivatePostgres {
  /** Connection settings for `pg` (database `postgres`, trust authentication). */
  readonly connection: pg.PoolConfig;
  readonly port: number;
  /** Stops it (fast shutdown). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** Stops it and removes its data directory. */
  destroy(): Promise<void>;
}

const BIN = "/usr/lib/postgresql/15/bin";

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Starts a private PostgreSQL 15 (initdb in a temporary directory, fsync
 * off) on a free port, as the `postgres` user when run as root. Never
 * touches the shared server.
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const dir = await mkdtemp(join(tmpdir(), "truss-pg-"));
  await chmod(dir, 0o777);
  const data = join(dir, "data");
  const port = await freePort();
  const asPostgres = (command: string, args: string[]) =>
    process.getuid?.() === 0 ? run("runuser", ["-u", "postgres", "--", join(BIN, command), ...args], { timeout: 60_000 }) : run(join(BIN, command), args, { timeout: 60_000 });
  await asPostgres("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  const ctl = (...args: string[]) => asPostgres("pg_ctl", ["-D", data, ...args]);
  const start = async () => {
    await ctl("-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, "-l", join(dir, "log"), "-w", "-t", "30", "start");
  };
  await start();
  return {
    connection: { host: "127.0.0.1", port, user: "postgres", database: "postgres" },
    port,
    stop: async () => {
      await ctl("-m", "fast", "-w", "-t", "30", "stop");
    },
    start,
    destroy: async () => {
      await ctl("-m", "immediate", "-w", "-t", "30", "stop").catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
