import { TrussError } from "@truss/core";
import type { Pool, PoolClient, QueryConfig, QueryResultRow } from "pg";
import { guardPoolErrors } from "../pool.js";
import { DEFAULT_SCHEMA, notMigrated, quotedSchema } from "../schema.js";

/** Default time a store call may take, connection included, before it rejects: 5 s. */
export const DEFAULT_STORE_TIMEOUT_MS = 5000;

/** Options every PostgreSQL store accepts. */
export interface PostgresStoreConnection {
  /**
   * The `pg` pool the store queries through. Each call takes a client for one
   * statement and gives it back; nothing is held between calls.
   */
  pool: Pool;
  /** The schema `migrate()` created the tables in. Default `"truss"`. */
  schema?: string;
  /**
   * How long one store call may take, waiting for a pooled connection
   * included, before it rejects, in ms: while PostgreSQL is down or
   * unreachable every call rejects within it, and the engine answers
   * `STORE_UNAVAILABLE`. Default 5,000.
   */
  timeoutMs?: number;
}

/**
 * Runs the stores' statements: each call takes a pooled client within the
 * timeout, runs one statement with the rest of the timeout as its read
 * timeout, and gives the client back (destroying it after an error, so a
 * connection PostgreSQL dropped or that timed out mid-statement is never
 * reused). A client that arrives after the call gave up is handed straight
 * back, unused, so a call that rejected on its deadline never runs later.
 * A value PostgreSQL refuses for good rejects with `INVALID_PAYLOAD`
 * ({@link refusedValue}), not as an outage; a schema `migrate()` did not
 * run in, with an error that says so ({@link notMigrated}).
 */
export class Statements {
  /** The schema, quoted for SQL. */
  readonly schema: string;
  private readonly pool: Pool;
  private readonly timeoutMs: number;
  /** The store's name, and its schema unquoted, for the error that says `migrate()` did not run there. */
  private readonly who: string;
  private readonly schemaName: string;

  constructor(who: string, options: PostgresStoreConnection) {
    const { pool } = options;
    if (!pool || typeof pool.connect !== "function") throw new TypeError(`${who}: pool must be a pg Pool`);
    const timeoutMs = options.timeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
    if (!(Number.isSafeInteger(timeoutMs) && timeoutMs > 0)) throw new RangeError(`${who}: timeoutMs must be a positive integer, got ${timeoutMs}`);
    this.pool = pool;
    this.schema = quotedSchema(who, options.schema);
    this.schemaName = options.schema ?? DEFAULT_SCHEMA;
    this.who = who;
    this.timeoutMs = timeoutMs;
    guardPoolErrors(pool);
  }

  /**
   * Runs one statement and resolves with its rows. With `lockTimeout`, what
   * is left of the call's time once it has a connection is passed as one
   * more parameter, after `values`: the stores' functions set it as their
   * `lock_timeout`, so a call that gives up waiting for a row lock gives up
   * on the server too, instead of committing later.
   */
  async rows<R>(text: string, values: readonly unknown[] = [], { lockTimeout = false } = {}): Promise<R[]> {
    const deadline = Date.now() + this.timeoutMs;
    const client = await this.connect();
    const params = lockTimeout ? [...values, Math.max(1, deadline - Date.now() - LOCK_TIMEOUT_MARGIN_MS)] : values;
    // A connection that drops mid-statement fails the statement and then
    // emits 'error' on the client, which must not end the process.
    client.on("error", ignore);
    try {
      // pg reads query_timeout from the query's config too; @types/pg does not list it there.
      const config: QueryConfig & { query_timeout: number } = { text, values: params as unknown[], query_timeout: Math.max(1, deadline - Date.now()) };
      const result = await client.query<QueryResultRow>(config);
      client.removeListener("error", ignore);
      client.release();
      return result.rows as R[];
    } catch (error) {
      client.removeListener("error", ignore);
      const refused = refusedValue(error);
      // A refused value leaves the connection as it was: it goes back to the pool.
      client.release(refused ? undefined : error instanceof Error ? error : true);
      throw refused ?? notMigrated(this.who, this.schemaName, error) ?? error;
    }
  }

  /** Runs one statement and resolves with its only row. */
  async row<R>(text: string, values: readonly unknown[] = [], options: { lockTimeout?: boolean } = {}): Promise<R> {
    const [first] = await this.rows<R>(text, values, options);
    if (first === undefined) throw new Error("postgres store: the statement returned no row");
    return first;
  }

  private connect(): Promise<PoolClient> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        reject(new Error(`no PostgreSQL connection within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pool.connect().then(
        (client) => {
          if (settled) {
            client.release();
            return;
          }
          settled = true;
          clearTimeout(timer);
          resolve(client);
        },
        (error: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }
}

function ignore(): void {}

/** How much sooner than the call's deadline the server stops waiting for a lock, so it gives up first. */
const LOCK_TIMEOUT_MARGIN_MS = 20;

/**
 * SQLSTATE classes of a value PostgreSQL refuses whatever the moment: 22,
 * data exception (a character it cannot hold, a malformed or out-of-range
 * value), and 54, program limit exceeded (an id too long for an index row).
 */
const REFUSED_VALUE_CLASSES = new Set(["22", "54"]);

/** What a client is told of any value PostgreSQL refuses for good: nothing of the database's own words. */
const REFUSED_VALUE_MESSAGE =
  "A value of this call cannot be stored (an id or key too long, or a character or number the store cannot hold); the same call is refused again.";

/**
 * `error` as `INVALID_PAYLOAD` when it is PostgreSQL refusing a value of the
 * call for good, else undefined. Taken for an outage (`STORE_UNAVAILABLE`),
 * it would be retried forever: by clients, and by an outbox relay that never
 * marks the row failed. The message is the same for every refusal, as it
 * reaches clients; PostgreSQL's own (which names tables and indexes) and its
 * SQLSTATE stay in `cause`, which the relay writes into a failed row.
 */
export function refusedValue(error: unknown): TrussError | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  if (!(error instanceof Error) || typeof code !== "string" || code.length !== 5 || !REFUSED_VALUE_CLASSES.has(code.slice(0, 2))) return undefined;
  return new TrussError("INVALID_PAYLOAD", REFUSED_VALUE_MESSAGE, { cause: error });
}

/**
 * Refuses text PostgreSQL cannot store: a `text` value never holds U+0000,
 * so an id, event name or key with one is refused before it reaches the
 * database.
 *
 * @throws TrussError `INVALID_PAYLOAD` naming `who` and the value's name.
 */
export function refuseNul(who: string, values: Record<string, string | null | undefined>): void {
  for (const [name, value] of Object.entries(values)) {
    if (typeof value === "string" && value.includes("\u0000")) throw new TrussError("INVALID_PAYLOAD", `${who}: ${name} must not contain U+0000, which PostgreSQL text cannot hold.`);
  }
}

/** A bigint column as pg returns it (text), or a number, as a JS number. */
export function toNumber(value: string | number | null | undefined): number {
  return value === null || value === undefined ? 0 : Number(value);
}

/** A slot of the striped totals tables, so concurrent appends rarely update the same row. */
export function totalsSlot(...parts: string[]): number {
  let hash = 0;
  for (const part of parts) {
    for (let index = 0; index < part.length; index += 1) hash = (hash * 31 + part.charCodeAt(index)) | 0;
    hash = (hash * 31 + 1) | 0;
  }
  return Math.abs(hash) % TOTALS_SLOTS;
}

/** How many rows each totals table spreads its counts over. */
export const TOTALS_SLOTS = 16;
