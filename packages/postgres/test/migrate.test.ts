import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { migrate, migrations, postgresOutbox, postgresStores } from "../src/index.js";
import { SHARED_POSTGRES } from "./support/postgres.js";

let pool: pg.Pool;
const schemas: string[] = [];
const fresh = () => {
  const schema = `m_${randomUUID().replaceAll("-", "")}`;
  schemas.push(schema);
  return schema;
};

beforeAll(() => {
  pool = new pg.Pool({ ...SHARED_POSTGRES, max: 10 });
});
afterAll(async () => {
  for (const schema of schemas) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

test("migrate creates the schema and every shipped migration once; run again, it applies nothing", async () => {
  const schema = fresh();
  const shipped = (await migrations()).map((migration) => migration.name);
  expect(shipped[0]).toBe("001_outbox.sql");
  expect(await migrate(pool, { schema })).toEqual(shipped);
  expect(await migrate(pool, { schema })).toEqual([]);
  const { rows } = await pool.query(`SELECT version, name FROM "${schema}".truss_migrations ORDER BY version`);
  expect(rows.map((row) => row.name)).toEqual(shipped);
  const table = await pool.query("SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'outbox'", [schema]);
  expect(table.rowCount).toBe(1);
});

test("nodes migrating the same schema at once apply each migration exactly once", async () => {
  const schema = fresh();
  const runs = await Promise.all(Array.from({ length: 5 }, () => migrate(pool, { schema })));
  expect(runs.flat().sort()).toEqual((await migrations()).map((migration) => migration.name));
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".truss_migrations`);
  expect(rows[0].n).toBe((await migrations()).length);
});

test("a schema name with $ or $$ in it gets its tables, functions and outbox in that schema, not in one with a $ fewer", async () => {
  const base = fresh();
  const [single, double] = [`${base}$x`, `${base}$$x`];
  schemas.push(single, double);
  const shipped = (await migrations()).map((migration) => migration.name);
  expect(await migrate(pool, { schema: single })).toEqual(shipped);
  expect(await migrate(pool, { schema: double })).toEqual(shipped);

  const tables = async (schema: string) =>
    (await pool.query("SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name", [schema])).rows.map((row) => row.table_name);
  expect(await tables(double)).toEqual(await tables(single));
  expect(await tables(double)).toContain("outbox");
  // The stores' functions and the outbox work there, and write nothing in the other schema.
  await postgresStores(pool, { schema: double }).streams.append({ companyId: "acme", stream: "company" }, "project:updated", { n: 1 });
  await postgresOutbox(pool, { schema: double }).with(pool).toCompany("acme").emit("project:updated", { n: 1 });
  const count = async (schema: string, table: string) => (await pool.query(`SELECT count(*)::int AS n FROM "${schema}".${table}`)).rows[0].n;
  expect([await count(double, "outbox"), await count(single, "outbox")]).toEqual([1, 0]);
});

test("a schema name that is not an SQL identifier is refused before anything runs", async () => {
  await expect(migrate(pool, { schema: 'x"; DROP TABLE y; --' })).rejects.toThrow(TypeError);
  await expect(migrate(pool, { schema: "" })).rejects.toThrow(TypeError);
});

test("the shipped SQL names no extension and only the schema placeholder", async () => {
  for (const migration of await migrations()) {
    expect(migration.sql, migration.name).not.toMatch(/CREATE EXTENSION/i);
    expect(migration.sql, migration.name).not.toMatch(/\b(public|truss)\./);
  }
});
