import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, test } from "vitest";
import { openDatabase } from "../src/db.js";

describe("the database file", () => {
  const directory = mkdtempSync(join(tmpdir(), "truss-erp-db-"));
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  test("a file from an earlier version of the demo is refused with what to do, not half-used", () => {
    const file = join(directory, "old.sqlite");
    const old = new Database(file);
    old.exec("CREATE TABLE companies (id TEXT PRIMARY KEY, name TEXT NOT NULL)");
    old.close();
    expect(() => openDatabase(file)).toThrow(`${file} was created by an earlier version of this demo (schema 0, now 2). Delete it; the next start seeds a fresh one.`);
  });

  test("a file this version created opens again", () => {
    const file = join(directory, "current.sqlite");
    openDatabase(file).close();
    const again = openDatabase(file);
    expect(again.pragma("user_version", { simple: true })).toBe(2);
    again.close();
  });
});
