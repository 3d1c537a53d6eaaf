/** The schema Truss's tables live in when none is given. */
export const DEFAULT_SCHEMA = "truss";

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

/**
 * The schema name quoted for SQL.
 *
 * @throws TypeError naming `who` when it is not an SQL identifier (letters,
 * digits, `_` and `$`, at most 63, not starting with a digit).
 */
export function quotedSchema(who: string, schema: unknown = DEFAULT_SCHEMA): string {
  if (typeof schema !== "string" || !IDENTIFIER.test(schema)) {
    throw new TypeError(`${who}: schema must be an SQL identifier (letters, digits, _ and $, at most 63), got ${JSON.stringify(schema)}`);
  }
  return `"${schema}"`;
}

/**
 * SQLSTATEs of a statement naming a schema (3F000), table (42P01) or
 * function (42883) that does not exist: `migrate()` has not run in the
 * schema the call was given.
 */
const NOT_MIGRATED_CODES = new Set(["3F000", "42P01", "42883"]);

/**
 * `error` explained when it is PostgreSQL saying Truss's tables are not in
 * `schema`, else undefined. The usual cause: the application migrated into
 * a schema of its own and did not give `who` the same one. PostgreSQL's
 * error stays as the `cause`.
 */
export function notMigrated(who: string, schema: string, error: unknown): Error | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  if (!(error instanceof Error) || typeof code !== "string" || !NOT_MIGRATED_CODES.has(code)) return undefined;
  return new Error(
    `${who}: Truss's tables were not found in schema "${schema}". Run migrate(pool, { schema }) for the schema you keep them in, and pass ${who} the same schema.`,
    { cause: error },
  );
}
