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
