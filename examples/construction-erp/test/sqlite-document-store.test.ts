import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { documentStoreSuite } from "@truss/conformance";
import type { DocumentStore } from "@truss/core";
import Database from "better-sqlite3";
import { afterAll, describe, expect, test } from "vitest";
import { openDatabase } from "../src/db.js";
import { sqliteDocumentStore } from "../src/sqlite-document-store.js";

/** Each store owns its connection; closing it is the teardown. */
const connections = new WeakMap<DocumentStore, Database.Database>();
const teardown = (store: DocumentStore) => {
  connections.get(store)?.close();
};

describe("SQLite document store on a private in-memory database", () => {
  documentStoreSuite(
    test,
    (options) => {
      const db = new Database(":memory:");
      const store = sqliteDocumentStore(db, options);
      connections.set(store, db);
      return store;
    },
    { teardown, prefix: "SQLite :memory:" },
  );
});

describe("SQLite document store on one database file shared by two connections", () => {
  // Two connections on one file stand for two processes; each case uses fresh
  // random companies, so the cases can share the file.
  const directory = mkdtempSync(join(tmpdir(), "truss-erp-docs-"));
  const file = join(directory, "documents.sqlite");
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  documentStoreSuite(
    test,
    (options) => {
      const db = openDatabase(file);
      const store = sqliteDocumentStore(db, options);
      connections.set(store, db);
      return store;
    },
    { teardown, sharedBackend: true, prefix: "SQLite file" },
  );
});

describe("SQLite document store on a database from before mutation ids were kept per writer", () => {
  test("gains the writer column on open, still finds the old records, and forgets them past the TTL", async () => {
    const db = new Database(":memory:");
    try {
      // The mutation table as the previous release created it, with one record.
      db.exec(`CREATE TABLE document_mutations (
        company_id TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, mutation_id TEXT NOT NULL,
        version INTEGER NOT NULL, recorded_at INTEGER NOT NULL, PRIMARY KEY (company_id, type, id, mutation_id)
      ) WITHOUT ROWID`);
      let at = 1_700_000_000_000;
      const key = { companyId: "northwind", type: "site-report", id: "a" };
      db.prepare("INSERT INTO document_mutations VALUES (?, ?, ?, 'old', 1, ?)").run(key.companyId, key.type, key.id, at);
      const store = sqliteDocumentStore(db, { mutationTtlMs: 1_000, now: () => at });
      expect(await store.compareAndSet(key, 0, { title: "A" }, "u-1")).toMatchObject({ ok: true });
      expect(await store.mutation(key, { id: "old", writer: "u-1", madeAt: at })).toEqual({ state: "committed", version: 1 });

      at += 1_001;
      expect(await store.compareAndSet(key, 1, { title: "A, v2" }, "u-1", { id: "new", writer: "u-1", madeAt: at })).toMatchObject({ ok: true });
      const rows = db.prepare("SELECT mutation_id, writer FROM document_mutations ORDER BY mutation_id").all();
      expect(rows).toEqual([{ mutation_id: "new", writer: "u-1" }]);
    } finally {
      db.close();
    }
  });
});

describe("SQLite document store listing", () => {
  test("lists only the asking company's documents, with their titles", async () => {
    const db = new Database(":memory:");
    try {
      const store = sqliteDocumentStore(db);
      await store.compareAndSet({ companyId: "northwind", type: "site-report", id: "a" }, 0, { title: "Report A" }, "u-1");
      await store.compareAndSet({ companyId: "northwind", type: "site-report", id: "a" }, 1, { title: "Report A, v2" }, "u-2");
      await store.compareAndSet({ companyId: "northwind", type: "checklist", id: "b" }, 0, { items: [] }, null);
      await store.compareAndSet({ companyId: "globex", type: "site-report", id: "c" }, 0, { title: "Globex report" }, "u-3");

      expect(store.list("northwind").map(({ type, id, version, title, updatedBy }) => ({ type, id, version, title, updatedBy }))).toEqual([
        { type: "checklist", id: "b", version: 1, title: null, updatedBy: null },
        { type: "site-report", id: "a", version: 2, title: "Report A, v2", updatedBy: "u-2" },
      ]);
      expect(store.list("northwind", "site-report").map((summary) => summary.id)).toEqual(["a"]);
      expect(store.list("globex").map((summary) => summary.id)).toEqual(["c"]);
    } finally {
      db.close();
    }
  });
});
