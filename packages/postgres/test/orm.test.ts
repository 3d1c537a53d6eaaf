import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import { pgSchema, text } from "drizzle-orm/pg-core";
import knex, { type Knex } from "knex";
import { afterAll, beforeAll, expect, test } from "vitest";
import { postgresOutbox, type PostgresOutbox } from "../src/index.js";
import { freshSchema, SHARED_POSTGRES, type FreshSchema } from "./support/postgres.js";
import { outboxRows } from "./support/relay.js";

// The guide's ORM snippets (docs/publishing-from-your-database.md), run against PostgreSQL.
let db: FreshSchema;
let outbox: PostgresOutbox;
beforeAll(async () => {
  db = await freshSchema();
  outbox = postgresOutbox(db.pool, { schema: db.schema });
  await db.pool.query(`CREATE TABLE "${db.schema}".expenses (id text PRIMARY KEY, status text NOT NULL)`);
  await db.pool.query(`INSERT INTO "${db.schema}".expenses VALUES ('e-1', 'submitted'), ('e-2', 'submitted')`);
});
afterAll(async () => {
  await db?.drop();
});

const status = async (id: string) => (await db.pool.query(`SELECT status FROM "${db.schema}".expenses WHERE id = $1`, [id])).rows[0].status;

test("Drizzle (node-postgres) on a pooled client: the outbox row commits and rolls back with the transaction", async () => {
  const expenses = pgSchema(db.schema).table("expenses", { id: text("id").primaryKey(), status: text("status").notNull() });
  const client = await db.pool.connect();
  try {
    const orm = drizzle({ client });
    await expect(
      orm.transaction(async (tx) => {
        await tx.update(expenses).set({ status: "approved" }).where(eq(expenses.id, "e-1"));
        await outbox.with(client).toUser("acme", "alice").emit("expense:approved", { expenseId: "e-1", attempt: 1 });
        throw new Error("rolled back");
      }),
    ).rejects.toThrow("rolled back");
    expect(await outboxRows(db.pool, db.schema)).toEqual([]);
    await orm.transaction(async (tx) => {
      await tx.update(expenses).set({ status: "approved" }).where(eq(expenses.id, "e-1"));
      await outbox.with(client).toUser("acme", "alice").emit("expense:approved", { expenseId: "e-1", attempt: 2 });
    });
  } finally {
    client.release();
  }
  expect(await status("e-1")).toBe("approved");
  const { rows } = await db.pool.query(`SELECT kind, company_id, user_id, event, data::text FROM "${db.schema}".outbox`);
  expect(rows).toEqual([{ kind: "user", company_id: "acme", user_id: "alice", event: "expense:approved", data: '{"expenseId":"e-1","attempt":2}' }]);
  await db.pool.query(`DELETE FROM "${db.schema}".outbox`);
});

test("Knex: its transaction object runs the outbox INSERT with ? placeholders, committed and rolled back with it", async () => {
  const orm = knex({ client: "pg", connection: { ...SHARED_POSTGRES }, searchPath: [db.schema], pool: { min: 0, max: 2 } });
  const inKnex = (trx: Knex.Transaction) => ({ query: (text: string, values: unknown[]) => trx.raw(text.replace(/\$\d+/g, "?"), values as Knex.RawBinding[]) });
  try {
    await expect(
      orm.transaction(async (trx) => {
        await trx("expenses").where({ id: "e-2" }).update({ status: "approved" });
        await outbox.with(inKnex(trx)).toCompany("acme").emit("expense:approved", { expenseId: "e-2" }, { idempotencyKey: "approve-e-2" });
        throw new Error("rolled back");
      }),
    ).rejects.toThrow("rolled back");
    expect(await outboxRows(db.pool, db.schema)).toEqual([]);
    await orm.transaction(async (trx) => {
      await trx("expenses").where({ id: "e-2" }).update({ status: "approved" });
      await outbox.with(inKnex(trx)).toCompany("acme").emit("expense:approved", { expenseId: "e-2" }, { idempotencyKey: "approve-e-2" });
    });
  } finally {
    await orm.destroy();
  }
  expect(await status("e-2")).toBe("approved");
  const { rows } = await db.pool.query(`SELECT kind, company_id, event, data::text, idempotency_key FROM "${db.schema}".outbox`);
  expect(rows).toEqual([{ kind: "company", company_id: "acme", event: "expense:approved", data: '{"expenseId":"e-2"}', idempotency_key: "approve-e-2" }]);
});
