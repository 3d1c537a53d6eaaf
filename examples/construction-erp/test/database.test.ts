import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, test } from "vitest";
import { createExpenses } from "../src/data/expenses.js";
import { openDatabase, seedDatabase } from "../src/db.js";
import { seedData } from "../src/seed.js";

describe("the database file", () => {
  const directory = mkdtempSync(join(tmpdir(), "truss-erp-db-"));
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  test("a file from an earlier version of the demo is refused with what to do, not half-used", () => {
    const file = join(directory, "old.sqlite");
    const old = new Database(file);
    old.exec("CREATE TABLE companies (id TEXT PRIMARY KEY, name TEXT NOT NULL)");
    old.close();
    expect(() => openDatabase(file)).toThrow(`${file} was created by an earlier version of this demo (schema 0, now 4). Delete it; the next start seeds a fresh one.`);
  });

  test("a file this version created opens again", () => {
    const file = join(directory, "current.sqlite");
    openDatabase(file).close();
    const again = openDatabase(file);
    expect(again.pragma("user_version", { simple: true })).toBe(4);
    again.close();
  });

  test("a file of the previous schema (2) is upgraded in place: its rows stay, expenses get a unique mutation id", () => {
    const file = join(directory, "schema-2.sqlite");
    // What version 2 wrote: the current schema without the mutation id (the other tables did not change).
    const created = openDatabase(file);
    seedDatabase(created, seedData());
    created.exec("DROP INDEX expenses_by_mutation; ALTER TABLE expenses DROP COLUMN mutation_id");
    created.pragma("user_version = 2");
    const expensesBefore = created.prepare("SELECT COUNT(*) AS count FROM expenses").get() as { count: number };
    created.close();

    const db = openDatabase(file);
    try {
      expect(db.pragma("user_version", { simple: true })).toBe(4);
      expect(db.prepare("SELECT COUNT(*) AS count FROM expenses").get()).toEqual(expensesBefore);
      const expenses = createExpenses(db);
      const fields = { projectId: "p-riverside", submittedBy: "u-ben", description: "Generator fuel", amount: 240 };
      const first = expenses.createOnce("northwind", fields, "m-1");
      const again = expenses.createOnce("northwind", { ...fields, amount: 999 }, "m-1");
      expect(first.duplicate).toBe(false);
      expect(again).toEqual({ expense: first.expense, duplicate: true });
      // Another user's mutation id may be the same string: ids are unique per user.
      expect(expenses.createOnce("northwind", { ...fields, submittedBy: "u-chloe" }, "m-1").duplicate).toBe(false);
      // The index, not only the lookup, refuses a second row.
      expect(() =>
        db
          .prepare("INSERT INTO expenses (id, company_id, project_id, submitted_by, description, amount, status, created_at, mutation_id) VALUES ('e-x', 'northwind', 'p-riverside', 'u-ben', 'x', 1, 'pending', 0, 'm-1')")
          .run(),
      ).toThrow(/UNIQUE/);
      expect(db.prepare("SELECT COUNT(*) AS count FROM expenses").get()).toEqual({ count: expensesBefore.count + 2 });
    } finally {
      db.close();
    }
  });
});
