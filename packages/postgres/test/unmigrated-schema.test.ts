import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { postgresOutbox, postgresStores } from "../src/index.js";
import { SHARED_POSTGRES } from "./support/postgres.js";
import { transaction } from "./support/relay.js";

// A schema that was never created, and one that exists but `migrate()` never ran in: what an
// application that migrated into its own schema, and forgot to pass it here, points at.
const missing = `t_${randomUUID().replaceAll("-", "")}`;
const empty = `t_${randomUUID().replaceAll("-", "")}`;
let pool: pg.Pool;

beforeAll(async () => {
  pool = new pg.Pool({ ...SHARED_POSTGRES, max: 4 });
  await pool.query(`CREATE SCHEMA "${empty}"`);
});
afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${empty}" CASCADE`);
  await pool.end();
});

/** Asserts the rejection names the schema and the fix, and keeps PostgreSQL's own error as its cause. */
async function expectNotMigrated(call: Promise<unknown>, schema: string): Promise<void> {
  const error = (await call.then(
    () => expect.unreachable("the call should have rejected"),
    (rejection: unknown) => rejection,
  )) as Error & { cause?: { code?: string } };
  expect(error.message).toContain(`tables were not found in schema "${schema}"`);
  expect(error.message).toContain("migrate(pool, { schema })");
  expect(["3F000", "42P01", "42883"]).toContain(error.cause?.code);
}

describe.each([
  ["never created", missing],
  ["not migrated", empty],
])("a schema %s", (_, schema) => {
  test("the outbox's emit, in the application's transaction, says to migrate it and pass the same schema", async () => {
    const outbox = postgresOutbox(pool, { schema });
    await expectNotMigrated(
      transaction(pool, (tx) => outbox.with(tx).toUser("acme", "alice").emit("expense:approved", { expenseId: "e-1" })),
      schema,
    );
  });

  test("the relay's claim says so too", async () => {
    const source = postgresOutbox(pool, { schema }).source({ listen: false });
    await expectNotMigrated(source.claim(10), schema);
    await source.close?.();
  });

  test("every store says so", async () => {
    const stores = postgresStores(pool, { schema });
    await expectNotMigrated(stores.inbox.append({ companyId: "acme", userId: "alice" }, "expense:approved", {}), schema);
    await expectNotMigrated(stores.streams.append({ companyId: "acme", stream: "company" }, "project:updated", {}), schema);
    await expectNotMigrated(stores.documents.get({ companyId: "acme", type: "site-report", id: "r-1" }), schema);
  });
});
