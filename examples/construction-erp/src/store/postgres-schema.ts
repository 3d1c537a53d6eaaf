/**
 * The ERP's tables on PostgreSQL: the SQLite schema of `db.ts`, ported.
 * Timestamps are epoch milliseconds in `double precision` (exact to 2^53,
 * and read back by `pg` as numbers, unlike `bigint`); emails are unique
 * whatever their case, as `COLLATE NOCASE` makes them on SQLite. Truss's own
 * tables (outbox, documents, inboxes, streams) live in their own schema,
 * created by `migrate()` of `@truss/postgres`.
 *
 * @module
 */
import type { Pool } from "pg";
import { hashPassword } from "../auth.js";
import type { SeedData } from "../seed.js";

/** Creates the ERP's tables that do not exist yet, in the connection's default schema. Idempotent. */
export const ERP_POSTGRES_SCHEMA = `
  CREATE TABLE IF NOT EXISTS companies (
    id   text PRIMARY KEY,
    name text NOT NULL
  );
  CREATE TABLE IF NOT EXISTS users (
    id            text PRIMARY KEY,
    company_id    text NOT NULL REFERENCES companies(id),
    name          text NOT NULL,
    email         text NOT NULL,
    role          text NOT NULL CHECK (role IN ('manager', 'member', 'subcontractor')),
    title         text NOT NULL,
    password_hash text NOT NULL,
    removed_at    double precision
  );
  CREATE UNIQUE INDEX IF NOT EXISTS users_by_email ON users (lower(email));
  CREATE TABLE IF NOT EXISTS projects (
    id         text PRIMARY KEY,
    company_id text NOT NULL REFERENCES companies(id),
    name       text NOT NULL,
    site       text NOT NULL,
    status     text NOT NULL,
    budget     double precision NOT NULL,
    spent      double precision NOT NULL DEFAULT 0,
    updated_at double precision NOT NULL
  );
  CREATE TABLE IF NOT EXISTS project_assignments (
    company_id text NOT NULL REFERENCES companies(id),
    project_id text NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id    text NOT NULL REFERENCES users(id),
    PRIMARY KEY (project_id, user_id)
  );
  CREATE INDEX IF NOT EXISTS project_assignments_by_user ON project_assignments (company_id, user_id);
  CREATE TABLE IF NOT EXISTS project_documents (
    company_id text NOT NULL REFERENCES companies(id),
    doc_type   text NOT NULL,
    doc_id     text NOT NULL,
    project_id text NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    PRIMARY KEY (company_id, doc_type, doc_id)
  );
  CREATE TABLE IF NOT EXISTS tasks (
    id          text PRIMARY KEY,
    company_id  text NOT NULL REFERENCES companies(id),
    project_id  text NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    title       text NOT NULL,
    status      text NOT NULL,
    assignee_id text REFERENCES users(id),
    due_date    text,
    updated_at  double precision NOT NULL
  );
  CREATE TABLE IF NOT EXISTS expenses (
    id           text PRIMARY KEY,
    company_id   text NOT NULL REFERENCES companies(id),
    project_id   text NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    submitted_by text NOT NULL REFERENCES users(id),
    description  text NOT NULL,
    amount       double precision NOT NULL,
    status       text NOT NULL,
    decided_by   text REFERENCES users(id),
    decided_at   double precision,
    reason       text,
    created_at   double precision NOT NULL,
    mutation_id  text
  );
  CREATE UNIQUE INDEX IF NOT EXISTS expenses_by_mutation ON expenses (company_id, submitted_by, mutation_id) WHERE mutation_id IS NOT NULL;
  CREATE TABLE IF NOT EXISTS invoices (
    id         text PRIMARY KEY,
    company_id text NOT NULL REFERENCES companies(id),
    project_id text NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    number     text NOT NULL,
    vendor     text NOT NULL,
    amount     double precision NOT NULL,
    status     text NOT NULL,
    paid_at    double precision
  );
  CREATE TABLE IF NOT EXISTS payments (
    id           text PRIMARY KEY,
    company_id   text NOT NULL REFERENCES companies(id),
    invoice_id   text NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
    amount       double precision NOT NULL,
    method       text NOT NULL,
    processed_by text NOT NULL REFERENCES users(id),
    processed_at double precision NOT NULL
  );
  CREATE TABLE IF NOT EXISTS inventory_items (
    id            text PRIMARY KEY,
    company_id    text NOT NULL REFERENCES companies(id),
    sku           text NOT NULL,
    name          text NOT NULL,
    unit          text NOT NULL,
    quantity      integer NOT NULL CHECK (quantity >= 0),
    reorder_level integer NOT NULL CHECK (reorder_level >= 0),
    location      text NOT NULL,
    updated_at    double precision NOT NULL,
    UNIQUE (company_id, sku)
  );
  CREATE TABLE IF NOT EXISTS push_subscriptions (
    endpoint   text PRIMARY KEY,
    company_id text NOT NULL REFERENCES companies(id),
    user_id    text NOT NULL REFERENCES users(id),
    device_id  text NOT NULL,
    p256dh     text NOT NULL,
    auth       text NOT NULL,
    created_at double precision NOT NULL
  );
  CREATE INDEX IF NOT EXISTS push_subscriptions_by_user ON push_subscriptions (company_id, user_id);
  CREATE TABLE IF NOT EXISTS notifications_sent (
    id         bigserial PRIMARY KEY,
    company_id text NOT NULL REFERENCES companies(id),
    user_id    text NOT NULL REFERENCES users(id),
    channel    text NOT NULL CHECK (channel IN ('email', 'push')),
    event      text NOT NULL,
    summary    text NOT NULL,
    sent_at    double precision NOT NULL,
    message_id text NOT NULL,
    UNIQUE (company_id, user_id, message_id)
  );
  CREATE INDEX IF NOT EXISTS notifications_sent_by_time ON notifications_sent (company_id, sent_at);
`;

/** An arbitrary key for the advisory lock that serialises schema creation and seeding between processes starting together. */
const SCHEMA_LOCK = 7_112_021;

/**
 * Creates the tables and, when the database has no company yet, loads the
 * seed, in one transaction under an advisory lock, so two processes starting
 * at once neither race on `CREATE TABLE` nor seed twice.
 *
 * @returns whether the seed was loaded.
 */
export async function preparePostgres(pool: Pool, seed: SeedData | false): Promise<boolean> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock($1)", [SCHEMA_LOCK]);
    await client.query(ERP_POSTGRES_SCHEMA);
    let seeded = false;
    if (seed) {
      const { rows } = await client.query<{ count: number }>("SELECT COUNT(*)::int AS count FROM companies");
      if (rows[0]!.count === 0) {
        const hash = new Map<string, string>();
        const hashFor = (password: string) => {
          if (!hash.has(password)) hash.set(password, hashPassword(password));
          return hash.get(password)!;
        };
        const insert = async (sql: string, rows: unknown[][]) => {
          for (const values of rows) await client.query(sql, values);
        };
        await insert("INSERT INTO companies (id, name) VALUES ($1, $2)", seed.companies.map((c) => [c.id, c.name]));
        await insert(
          "INSERT INTO users (id, company_id, name, email, role, title, password_hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
          seed.users.map((u) => [u.id, u.companyId, u.name, u.email, u.role, u.title, hashFor(u.password)]),
        );
        await insert(
          "INSERT INTO projects (id, company_id, name, site, status, budget, spent, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
          seed.projects.map((p) => [p.id, p.companyId, p.name, p.site, p.status, p.budget, p.spent, p.updatedAt]),
        );
        await insert(
          "INSERT INTO tasks (id, company_id, project_id, title, status, assignee_id, due_date, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
          seed.tasks.map((t) => [t.id, t.companyId, t.projectId, t.title, t.status, t.assigneeId, t.dueDate, t.updatedAt]),
        );
        await insert(
          "INSERT INTO expenses (id, company_id, project_id, submitted_by, description, amount, status, decided_by, decided_at, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
          seed.expenses.map((e) => [e.id, e.companyId, e.projectId, e.submittedBy, e.description, e.amount, e.status, e.decidedBy, e.decidedAt, e.reason, e.createdAt]),
        );
        await insert(
          "INSERT INTO invoices (id, company_id, project_id, number, vendor, amount, status, paid_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
          seed.invoices.map((i) => [i.id, i.companyId, i.projectId, i.number, i.vendor, i.amount, i.status, i.paidAt]),
        );
        await insert(
          "INSERT INTO inventory_items (id, company_id, sku, name, unit, quantity, reorder_level, location, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
          seed.inventory.map((s) => [s.id, s.companyId, s.sku, s.name, s.unit, s.quantity, s.reorderLevel, s.location, s.updatedAt]),
        );
        await insert(
          "INSERT INTO project_assignments (company_id, project_id, user_id) VALUES ($1, $2, $3)",
          seed.assignments.map((a) => [a.companyId, a.projectId, a.userId]),
        );
        await insert(
          "INSERT INTO project_documents (company_id, doc_type, doc_id, project_id) VALUES ($1, $2, $3, $4)",
          seed.documents.filter((d) => d.projectId !== null).map((d) => [d.companyId, d.type, d.id, d.projectId]),
        );
        seeded = true;
      }
    }
    await client.query("COMMIT");
    return seeded;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
