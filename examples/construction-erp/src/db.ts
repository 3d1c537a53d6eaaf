/**
 * The embedded SQLite database: opening it, its schema, and loading the seed
 * into an empty one. Every table that holds tenant data has a `company_id`
 * column, and every query in `data/` filters on it.
 *
 * @module
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { hashPassword } from "./auth.js";
import type { SeedData } from "./seed.js";

/** A better-sqlite3 connection. */
export type Db = Database.Database;

/**
 * The schema's version, in SQLite's `user_version`. Version 2 added
 * subcontractors, project assignments, the projects of documents and removed
 * users; `CREATE TABLE IF NOT EXISTS` cannot change an older file's tables,
 * so a file older than {@link OLDEST_UPGRADABLE} is refused. Version 3 added
 * the mutation id of an expense submitted through the dashboard's outbox; a
 * version 2 file gets the column in place ({@link upgrade}). Version 4 added
 * the browsers' push subscriptions and the log of notifications sent by
 * e-mail or push, new tables that `CREATE TABLE IF NOT EXISTS` adds to an
 * older file.
 */
const SCHEMA_VERSION = 4;

/** The oldest schema {@link openDatabase} upgrades in place. */
const OLDEST_UPGRADABLE = 2;

/**
 * Opens (creating if needed) the database at `filename`, or a private one
 * for `":memory:"`, and creates the ERP's tables.
 *
 * WAL lets the dashboard's reads proceed while a write commits; the busy
 * timeout makes a second process wait for the write lock instead of failing.
 *
 * @throws Error when the file was created by an earlier version of the demo.
 */
export function openDatabase(filename: string): Db {
  if (filename !== ":memory:") mkdirSync(dirname(filename), { recursive: true });
  const db = new Database(filename);
  if (filename !== ":memory:") db.pragma("journal_mode = WAL");
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  // One write transaction, so a second process opening the file meanwhile sees the tables and their version together.
  const createSchema = db.transaction(() => {
    const version = db.pragma("user_version", { simple: true }) as number;
    const hasTables = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'companies'").get() !== undefined;
    if (hasTables && version < OLDEST_UPGRADABLE) {
      throw new Error(`${filename} was created by an earlier version of this demo (schema ${version}, now ${SCHEMA_VERSION}). Delete it; the next start seeds a fresh one.`);
    }
    db.exec(SCHEMA);
    upgrade(db);
    if (version < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
  });
  try {
    createSchema.immediate();
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/**
 * Brings a version 2 file's tables up to the current schema (rows are kept:
 * it only adds), and creates the index that {@link SCHEMA} leaves to it. On
 * a current file it changes nothing.
 */
function upgrade(db: Db): void {
  const expenseColumns = db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('expenses')").all();
  if (!expenseColumns.some((column) => column.name === "mutation_id")) db.exec("ALTER TABLE expenses ADD COLUMN mutation_id TEXT");
  // SQLite cannot add a column with a UNIQUE constraint, so the constraint is this index, on new and upgraded files alike.
  // Mutation ids are unique per user (each device makes its own), hence the submitter in the key.
  db.exec("CREATE UNIQUE INDEX IF NOT EXISTS expenses_by_mutation ON expenses (company_id, submitted_by, mutation_id) WHERE mutation_id IS NOT NULL");
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS companies (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL
  );
  CREATE TABLE IF NOT EXISTS users (
    id            TEXT PRIMARY KEY,
    company_id    TEXT NOT NULL REFERENCES companies(id),
    name          TEXT NOT NULL,
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role          TEXT NOT NULL CHECK (role IN ('manager', 'member', 'subcontractor')),
    title         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    -- Set when a manager removes the user; rows they wrote keep pointing at them.
    removed_at    INTEGER
  );
  CREATE TABLE IF NOT EXISTS projects (
    id         TEXT PRIMARY KEY,
    company_id TEXT NOT NULL REFERENCES companies(id),
    name       TEXT NOT NULL,
    site       TEXT NOT NULL,
    status     TEXT NOT NULL,
    budget     REAL NOT NULL,
    spent      REAL NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS project_assignments (
    company_id TEXT NOT NULL REFERENCES companies(id),
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (project_id, user_id)
  );
  CREATE INDEX IF NOT EXISTS project_assignments_by_user ON project_assignments (company_id, user_id);
  CREATE TABLE IF NOT EXISTS project_documents (
    company_id TEXT NOT NULL REFERENCES companies(id),
    doc_type   TEXT NOT NULL,
    doc_id     TEXT NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    PRIMARY KEY (company_id, doc_type, doc_id)
  );
  CREATE TABLE IF NOT EXISTS tasks (
    id          TEXT PRIMARY KEY,
    company_id  TEXT NOT NULL REFERENCES companies(id),
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    title       TEXT NOT NULL,
    status      TEXT NOT NULL,
    assignee_id TEXT REFERENCES users(id),
    due_date    TEXT,
    updated_at  INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS expenses (
    id           TEXT PRIMARY KEY,
    company_id   TEXT NOT NULL REFERENCES companies(id),
    project_id   TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    submitted_by TEXT NOT NULL REFERENCES users(id),
    description  TEXT NOT NULL,
    amount       REAL NOT NULL,
    status       TEXT NOT NULL,
    decided_by   TEXT REFERENCES users(id),
    decided_at   INTEGER,
    reason       TEXT,
    created_at   INTEGER NOT NULL,
    -- The outbox mutation id of an expense:submit event; a resend finds the first row (index expenses_by_mutation).
    mutation_id  TEXT
  );
  CREATE TABLE IF NOT EXISTS invoices (
    id         TEXT PRIMARY KEY,
    company_id TEXT NOT NULL REFERENCES companies(id),
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    number     TEXT NOT NULL,
    vendor     TEXT NOT NULL,
    amount     REAL NOT NULL,
    status     TEXT NOT NULL,
    paid_at    INTEGER
  );
  CREATE TABLE IF NOT EXISTS payments (
    id           TEXT PRIMARY KEY,
    company_id   TEXT NOT NULL REFERENCES companies(id),
    invoice_id   TEXT NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
    amount       REAL NOT NULL,
    method       TEXT NOT NULL,
    processed_by TEXT NOT NULL REFERENCES users(id),
    processed_at INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS inventory_items (
    id            TEXT PRIMARY KEY,
    company_id    TEXT NOT NULL REFERENCES companies(id),
    sku           TEXT NOT NULL,
    name          TEXT NOT NULL,
    unit          TEXT NOT NULL,
    quantity      INTEGER NOT NULL CHECK (quantity >= 0),
    reorder_level INTEGER NOT NULL CHECK (reorder_level >= 0),
    location      TEXT NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (company_id, sku)
  );
  -- One row per browser (its push service endpoint), registered by the user logged in there.
  CREATE TABLE IF NOT EXISTS push_subscriptions (
    endpoint   TEXT PRIMARY KEY,
    company_id TEXT NOT NULL REFERENCES companies(id),
    user_id    TEXT NOT NULL REFERENCES users(id),
    device_id  TEXT NOT NULL,
    p256dh     TEXT NOT NULL,
    auth       TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS push_subscriptions_by_user ON push_subscriptions (company_id, user_id);
  -- Messages no device took, sent by e-mail or Web Push instead: one row per inbox message (the hook is at least once).
  CREATE TABLE IF NOT EXISTS notifications_sent (
    id         INTEGER PRIMARY KEY,
    company_id TEXT NOT NULL REFERENCES companies(id),
    user_id    TEXT NOT NULL REFERENCES users(id),
    channel    TEXT NOT NULL CHECK (channel IN ('email', 'push')),
    event      TEXT NOT NULL,
    summary    TEXT NOT NULL,
    sent_at    INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    UNIQUE (company_id, user_id, message_id)
  );
  CREATE INDEX IF NOT EXISTS notifications_sent_by_time ON notifications_sent (company_id, sent_at);
`;

/**
 * Loads the seed's rows into a database that has no companies yet; a
 * database that already has data is left alone, so restarts keep changes.
 * Documents are seeded separately, through the document store.
 *
 * @returns whether the seed was loaded.
 */
export function seedDatabase(db: Db, seed: SeedData): boolean {
  const { count } = db.prepare<[], { count: number }>("SELECT COUNT(*) AS count FROM companies").get()!;
  if (count > 0) return false;
  // One hash for the shared demo password: scrypt is deliberately slow.
  const passwordHashes = new Map<string, string>();
  const hashFor = (password: string) => {
    let hash = passwordHashes.get(password);
    if (!hash) passwordHashes.set(password, (hash = hashPassword(password)));
    return hash;
  };
  db.transaction(() => {
    const company = db.prepare("INSERT INTO companies (id, name) VALUES (@id, @name)");
    for (const row of seed.companies) company.run(row);
    const user = db.prepare(
      "INSERT INTO users (id, company_id, name, email, role, title, password_hash) VALUES (@id, @companyId, @name, @email, @role, @title, @passwordHash)",
    );
    for (const row of seed.users) user.run({ ...row, passwordHash: hashFor(row.password) });
    const project = db.prepare(
      "INSERT INTO projects (id, company_id, name, site, status, budget, spent, updated_at) VALUES (@id, @companyId, @name, @site, @status, @budget, @spent, @updatedAt)",
    );
    for (const row of seed.projects) project.run(row);
    const task = db.prepare(
      "INSERT INTO tasks (id, company_id, project_id, title, status, assignee_id, due_date, updated_at) VALUES (@id, @companyId, @projectId, @title, @status, @assigneeId, @dueDate, @updatedAt)",
    );
    for (const row of seed.tasks) task.run(row);
    const expense = db.prepare(
      "INSERT INTO expenses (id, company_id, project_id, submitted_by, description, amount, status, decided_by, decided_at, reason, created_at) VALUES (@id, @companyId, @projectId, @submittedBy, @description, @amount, @status, @decidedBy, @decidedAt, @reason, @createdAt)",
    );
    for (const row of seed.expenses) expense.run(row);
    const invoice = db.prepare(
      "INSERT INTO invoices (id, company_id, project_id, number, vendor, amount, status, paid_at) VALUES (@id, @companyId, @projectId, @number, @vendor, @amount, @status, @paidAt)",
    );
    for (const row of seed.invoices) invoice.run(row);
    const item = db.prepare(
      "INSERT INTO inventory_items (id, company_id, sku, name, unit, quantity, reorder_level, location, updated_at) VALUES (@id, @companyId, @sku, @name, @unit, @quantity, @reorderLevel, @location, @updatedAt)",
    );
    for (const row of seed.inventory) item.run(row);
    const assignment = db.prepare("INSERT INTO project_assignments (company_id, project_id, user_id) VALUES (@companyId, @projectId, @userId)");
    for (const row of seed.assignments) assignment.run(row);
    const documentProject = db.prepare("INSERT INTO project_documents (company_id, doc_type, doc_id, project_id) VALUES (@companyId, @type, @id, @projectId)");
    for (const row of seed.documents) if (row.projectId !== null) documentProject.run(row);
  })();
  return true;
}
