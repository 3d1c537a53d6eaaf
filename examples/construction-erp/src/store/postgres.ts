/**
 * {@link ErpData} on PostgreSQL: the ERP's tables (`postgres-schema.ts`) and
 * Truss's (`migrate()` of `@truss/postgres`) in one database. Each
 * announcing write runs in one transaction on one pooled client, and its
 * events go into Truss's outbox table through `outbox.with(client)` before
 * `COMMIT`: a rolled-back write publishes nothing, a committed one is
 * relayed to devices exactly once.
 *
 * @module
 */
import { postgresOutbox, type PostgresOutbox } from "@truss/postgres";
import type { OutboxLimits } from "@truss/core";
import type { Pool, PoolClient } from "pg";
import type { Expense, InventoryItem, Invoice, Payment, Project, Task } from "../catalog.js";
import type { Company, PushSubscriptionRecord, SentNotification, User } from "../data/index.js";
import { MAX_PUSH_SUBSCRIPTIONS_PER_USER } from "../data/push-subscriptions.js";
import { SENT_NOTIFICATIONS_SHOWN } from "../data/notifications-sent.js";
import { InsufficientStockError } from "../data/inventory.js";
import { newId } from "../data/ids.js";
import type { DocumentSummary } from "../sqlite-document-store.js";
import { recordingAnnouncer, type Announcement } from "./announcer.js";
import type { Announce, BeforeCommit, ErpData } from "./types.js";

/** Options of {@link postgresErpData}. */
export interface PostgresErpDataOptions {
  /** The schema of Truss's tables (outbox and documents), as given to `migrate()`. Default `"truss"`. */
  trussSchema?: string;
  /** The engine's limits, which outbox data is checked against at the write. */
  limits?: OutboxLimits;
  /** See {@link BeforeCommit}. */
  beforeCommit?: BeforeCommit;
  /** The clock, in epoch ms. */
  now?: () => number;
}

type Queryable = Pick<Pool, "query"> | PoolClient;

const USER = `id, company_id AS "companyId", name, email, role, title`;
const PROJECT = `id, name, site, status, budget, spent, updated_at AS "updatedAt"`;
const TASK = `id, project_id AS "projectId", title, status, assignee_id AS "assigneeId", due_date AS "dueDate", updated_at AS "updatedAt"`;
const EXPENSE = `id, project_id AS "projectId", submitted_by AS "submittedBy", description, amount, status, decided_by AS "decidedBy", decided_at AS "decidedAt", reason, created_at AS "createdAt"`;
const INVOICE = `id, project_id AS "projectId", number, vendor, amount, status, paid_at AS "paidAt"`;
const PAYMENT = `id, invoice_id AS "invoiceId", amount, method, processed_by AS "processedBy", processed_at AS "processedAt"`;
const SUBSCRIPTION = `endpoint, p256dh, auth, device_id AS "deviceId"`;
const SENT = `n.user_id AS "userId", u.name AS "userName", n.channel, n.event, n.summary, n.sent_at AS "sentAt", n.message_id AS "messageId"`;
const ITEM = `id, sku, name, unit, quantity, reorder_level AS "reorderLevel", location, updated_at AS "updatedAt"`;

async function all<T>(db: Queryable, sql: string, values: unknown[] = []): Promise<T[]> {
  return (await db.query(sql, values)).rows as T[];
}
async function one<T>(db: Queryable, sql: string, values: unknown[] = []): Promise<T | undefined> {
  return (await db.query(sql, values)).rows[0] as T | undefined;
}

/** The ERP's data on a `pg` pool, publishing through `@truss/postgres`'s outbox. Run `migrate()` and `preparePostgres()` first. */
export function postgresErpData(pool: Pool, options: PostgresErpDataOptions = {}): ErpData {
  const now = options.now ?? Date.now;
  const trussSchema = options.trussSchema ?? "truss";
  const outbox: PostgresOutbox = postgresOutbox(pool, { schema: trussSchema, ...(options.limits ? { limits: options.limits } : {}) });

  const publish = async (client: PoolClient, announcements: readonly Announcement[]) => {
    const writer = outbox.with(client);
    for (const { target, event, data, options: emitOptions } of announcements) {
      const emitter =
        target.kind === "user"
          ? writer.toUser(target.companyId, target.userId)
          : target.kind === "topic"
            ? writer.toTopic(target.companyId, target.topic)
            : writer.toCompany(target.companyId);
      await emitter.emit(event, data, emitOptions);
    }
  };

  /** Runs `work` in one transaction on one pooled client. */
  const transaction = async <T>(work: (client: PoolClient) => Promise<T>): Promise<T> => {
    const client = await pool.connect();
    // A client whose ROLLBACK failed (the connection broke) is discarded rather than returned to the pool.
    let broken: Error | undefined;
    try {
      await client.query("BEGIN");
      const value = await work(client);
      await client.query("COMMIT");
      return value;
    } catch (error) {
      await client.query("ROLLBACK").catch((rollbackError: unknown) => {
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      });
      throw error;
    } finally {
      client.release(broken);
    }
  };

  /** Runs `work` and writes what `announce` says about its result in one transaction. */
  const write = <T>(
    operation: string,
    work: (client: PoolClient) => Promise<T>,
    announce: Announce<NonNullable<T>> | undefined,
    changed: (result: T) => boolean = (r) => r !== undefined && r !== false,
  ): Promise<T> =>
    transaction(async (client) => {
      const value = await work(client);
      if (announce && changed(value)) {
        const { out, announcements } = recordingAnnouncer();
        announce(value as NonNullable<T>, out);
        await publish(client, announcements);
      }
      options.beforeCommit?.(operation);
      return value;
    });

  const getProject = (db: Queryable, companyId: string, id: string) => one<Project>(db, `SELECT ${PROJECT} FROM projects WHERE company_id = $1 AND id = $2`, [companyId, id]);
  const addSpent = (db: Queryable, companyId: string, id: string, amount: number) =>
    one<Project>(db, `UPDATE projects SET spent = spent + $1, updated_at = $2 WHERE company_id = $3 AND id = $4 RETURNING ${PROJECT}`, [amount, now(), companyId, id]);
  const getExpense = (db: Queryable, companyId: string, id: string) => one<Expense>(db, `SELECT ${EXPENSE} FROM expenses WHERE company_id = $1 AND id = $2`, [companyId, id]);
  const insertExpense = `INSERT INTO expenses (id, company_id, project_id, submitted_by, description, amount, status, created_at, mutation_id)
    VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8)`;

  return {
    kind: "postgres",
    users: {
      findForLogin: (email) =>
        one(pool, `SELECT ${USER}, password_hash AS "passwordHash" FROM users WHERE lower(email) = lower($1) AND removed_at IS NULL`, [email.trim()]),
      get: (companyId, id) => one<User>(pool, `SELECT ${USER} FROM users WHERE company_id = $1 AND id = $2 AND removed_at IS NULL`, [companyId, id]),
      remove: async (companyId, id) =>
        ((await pool.query("UPDATE users SET removed_at = $1 WHERE company_id = $2 AND id = $3 AND removed_at IS NULL", [now(), companyId, id])).rowCount ?? 0) > 0,
      list: (companyId) => all<User>(pool, `SELECT ${USER} FROM users WHERE company_id = $1 AND removed_at IS NULL ORDER BY name`, [companyId]),
      managers: (companyId) =>
        all<User>(pool, `SELECT ${USER} FROM users WHERE company_id = $1 AND role = 'manager' AND removed_at IS NULL ORDER BY name`, [companyId]),
      company: (companyId) => one<Company>(pool, "SELECT id, name FROM companies WHERE id = $1", [companyId]),
    },
    projects: {
      list: (companyId) => all<Project>(pool, `SELECT ${PROJECT} FROM projects WHERE company_id = $1 ORDER BY name`, [companyId]),
      get: (companyId, id) => getProject(pool, companyId, id),
      create: (companyId, fields, announce) =>
        write(
          "projects.create",
          async (client) =>
            (await one<Project>(
              client,
              `INSERT INTO projects (id, company_id, name, site, status, budget, spent, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7) RETURNING ${PROJECT}`,
              [newId("p"), companyId, fields.name, fields.site, fields.status, fields.budget, now()],
            ))!,
          announce,
        ),
      update: (companyId, id, changes, announce) =>
        write(
          "projects.update",
          async (client) => {
            const current = await one<Project>(client, `SELECT ${PROJECT} FROM projects WHERE company_id = $1 AND id = $2 FOR UPDATE`, [companyId, id]);
            if (!current) return undefined;
            const next = { ...current, ...changes };
            return one<Project>(
              client,
              `UPDATE projects SET name = $1, site = $2, status = $3, budget = $4, updated_at = $5 WHERE company_id = $6 AND id = $7 RETURNING ${PROJECT}`,
              [next.name, next.site, next.status, next.budget, now(), companyId, id],
            );
          },
          announce,
        ),
      remove: (companyId, id, announce) =>
        write(
          "projects.remove",
          async (client) => ((await client.query("DELETE FROM projects WHERE company_id = $1 AND id = $2", [companyId, id])).rowCount ?? 0) > 0,
          announce as Announce<boolean> | undefined,
        ),
    },
    assignments: {
      projectsOf: async (companyId, userId) =>
        (await all<{ projectId: string }>(pool, `SELECT project_id AS "projectId" FROM project_assignments WHERE company_id = $1 AND user_id = $2 ORDER BY project_id`, [
          companyId,
          userId,
        ])).map((row) => row.projectId),
    },
    documentProjects: {
      projectOf: async (companyId, type, id) =>
        (await one<{ projectId: string }>(pool, `SELECT project_id AS "projectId" FROM project_documents WHERE company_id = $1 AND doc_type = $2 AND doc_id = $3`, [
          companyId,
          type,
          id,
        ]))?.projectId ?? null,
      all: async (companyId) =>
        new Map(
          (await all<{ type: string; id: string; projectId: string }>(
            pool,
            `SELECT doc_type AS type, doc_id AS id, project_id AS "projectId" FROM project_documents WHERE company_id = $1`,
            [companyId],
          )).map((row) => [`${row.type}/${row.id}`, row.projectId]),
        ),
    },
    tasks: {
      list: (companyId) => all<Task>(pool, `SELECT ${TASK} FROM tasks WHERE company_id = $1 ORDER BY due_date NULLS FIRST, title`, [companyId]),
      get: (companyId, id) => one<Task>(pool, `SELECT ${TASK} FROM tasks WHERE company_id = $1 AND id = $2`, [companyId, id]),
      create: (companyId, fields, announce) =>
        write(
          "tasks.create",
          async (client) =>
            (await one<Task>(
              client,
              `INSERT INTO tasks (id, company_id, project_id, title, status, assignee_id, due_date, updated_at) VALUES ($1, $2, $3, $4, 'open', $5, $6, $7) RETURNING ${TASK}`,
              [newId("t"), companyId, fields.projectId, fields.title, fields.assigneeId, fields.dueDate, now()],
            ))!,
          announce,
        ),
      assign: (companyId, id, assigneeId, announce) =>
        write(
          "tasks.assign",
          (client) => one<Task>(client, `UPDATE tasks SET assignee_id = $1, updated_at = $2 WHERE company_id = $3 AND id = $4 RETURNING ${TASK}`, [assigneeId, now(), companyId, id]),
          announce,
        ),
    },
    expenses: {
      list: (companyId) => all<Expense>(pool, `SELECT ${EXPENSE} FROM expenses WHERE company_id = $1 ORDER BY created_at DESC`, [companyId]),
      get: (companyId, id) => getExpense(pool, companyId, id),
      create: (companyId, fields, announce) =>
        write(
          "expenses.create",
          async (client) => {
            const id = newId("e");
            await client.query(insertExpense, [id, companyId, fields.projectId, fields.submittedBy, fields.description, fields.amount, now(), null]);
            return (await getExpense(client, companyId, id))!;
          },
          announce,
        ),
      createOnce: (companyId, fields, mutationId, announce) =>
        write(
          "expenses.createOnce",
          async (client) => {
            const id = newId("e");
            // The unique index on (company, submitter, mutation id) decides between two concurrent first sends.
            const inserted = await client.query(
              `${insertExpense} ON CONFLICT (company_id, submitted_by, mutation_id) WHERE mutation_id IS NOT NULL DO NOTHING`,
              [id, companyId, fields.projectId, fields.submittedBy, fields.description, fields.amount, now(), mutationId],
            );
            if ((inserted.rowCount ?? 0) > 0) return { expense: (await getExpense(client, companyId, id))!, duplicate: false };
            const first = await one<Expense>(client, `SELECT ${EXPENSE} FROM expenses WHERE company_id = $1 AND submitted_by = $2 AND mutation_id = $3`, [
              companyId,
              fields.submittedBy,
              mutationId,
            ]);
            return { expense: first!, duplicate: true };
          },
          announce && ((created, out) => announce(created.expense, out)),
          (created) => !created.duplicate,
        ),
      decide: (companyId, id, decision, announce) =>
        write(
          "expenses.decide",
          async (client) => {
            // `status = 'pending'` makes the decision a compare-and-set: two managers cannot both approve.
            const expense = await one<Expense>(
              client,
              `UPDATE expenses SET status = $1, decided_by = $2, decided_at = $3, reason = $4 WHERE company_id = $5 AND id = $6 AND status = 'pending' RETURNING ${EXPENSE}`,
              [decision.status, decision.decidedBy, now(), decision.reason, companyId, id],
            );
            if (!expense) return undefined;
            const project = decision.status === "approved" ? await addSpent(client, companyId, expense.projectId, expense.amount) : undefined;
            return { expense, project };
          },
          announce,
        ),
    },
    invoices: {
      list: (companyId) => all<Invoice>(pool, `SELECT ${INVOICE} FROM invoices WHERE company_id = $1 ORDER BY number`, [companyId]),
      get: (companyId, id) => one<Invoice>(pool, `SELECT ${INVOICE} FROM invoices WHERE company_id = $1 AND id = $2`, [companyId, id]),
      pay: (companyId, id, method, processedBy, announce) =>
        write(
          "invoices.pay",
          async (client) => {
            const processedAt = now();
            const invoice = await one<Invoice>(
              client,
              `UPDATE invoices SET status = 'paid', paid_at = $1 WHERE company_id = $2 AND id = $3 AND status = 'open' RETURNING ${INVOICE}`,
              [processedAt, companyId, id],
            );
            if (!invoice) return undefined;
            const payment = (await one<Payment>(
              client,
              `INSERT INTO payments (id, company_id, invoice_id, amount, method, processed_by, processed_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${PAYMENT}`,
              [newId("pay"), companyId, id, invoice.amount, method, processedBy, processedAt],
            ))!;
            const project = await addSpent(client, companyId, invoice.projectId, invoice.amount);
            return { invoice, payment, project };
          },
          announce,
        ),
    },
    inventory: {
      list: (companyId) => all<InventoryItem>(pool, `SELECT ${ITEM} FROM inventory_items WHERE company_id = $1 ORDER BY name`, [companyId]),
      get: (companyId, id) => one<InventoryItem>(pool, `SELECT ${ITEM} FROM inventory_items WHERE company_id = $1 AND id = $2`, [companyId, id]),
      create: (companyId, fields, announce) =>
        write(
          "inventory.create",
          async (client) =>
            (await one<InventoryItem>(
              client,
              `INSERT INTO inventory_items (id, company_id, sku, name, unit, quantity, reorder_level, location, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${ITEM}`,
              [newId("s"), companyId, fields.sku, fields.name, fields.unit, fields.quantity, fields.reorderLevel, fields.location, now()],
            ))!,
          announce,
        ),
      adjust: (companyId, id, delta, announce) =>
        write(
          "inventory.adjust",
          async (client) => {
            const current = await one<InventoryItem>(client, `SELECT ${ITEM} FROM inventory_items WHERE company_id = $1 AND id = $2 FOR UPDATE`, [companyId, id]);
            if (!current) return undefined;
            const quantity = current.quantity + delta;
            if (quantity < 0) throw new InsufficientStockError(`Only ${current.quantity} ${current.unit} of ${current.name} in stock; cannot take ${-delta}.`);
            const item = (await one<InventoryItem>(
              client,
              `UPDATE inventory_items SET quantity = $1, updated_at = $2 WHERE company_id = $3 AND id = $4 RETURNING ${ITEM}`,
              [quantity, now(), companyId, id],
            ))!;
            return { item, previousQuantity: current.quantity };
          },
          announce,
        ),
    },
    documents: {
      // Truss's documents table is plain SQL by design: the latest version of each document, readable by the application.
      list: (companyId) =>
        all<DocumentSummary>(
          pool,
          `SELECT type, id, version::float8 AS version, updated_at::float8 AS "updatedAt", updated_by AS "updatedBy",
                  CASE WHEN json_typeof(data -> 'title') = 'string' THEN data ->> 'title' END AS title
           FROM "${trussSchema}".documents WHERE company_id = $1 ORDER BY type, id`,
          [companyId],
        ),
    },
    pushSubscriptions: {
      list: (companyId, userId) =>
        all<PushSubscriptionRecord>(pool, `SELECT ${SUBSCRIPTION} FROM push_subscriptions WHERE company_id = $1 AND user_id = $2 ORDER BY created_at DESC, endpoint`, [
          companyId,
          userId,
        ]),
      save: (companyId, userId, { endpoint, p256dh, auth, deviceId }) =>
        transaction(async (client) => {
            await client.query(
              `INSERT INTO push_subscriptions (endpoint, company_id, user_id, device_id, p256dh, auth, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (endpoint) DO UPDATE SET company_id = excluded.company_id, user_id = excluded.user_id, device_id = excluded.device_id,
                 p256dh = excluded.p256dh, auth = excluded.auth, created_at = excluded.created_at`,
              [endpoint, companyId, userId, deviceId, p256dh, auth, now()],
            );
            await client.query(
              `DELETE FROM push_subscriptions WHERE company_id = $1 AND user_id = $2 AND endpoint NOT IN (
                 SELECT endpoint FROM push_subscriptions WHERE company_id = $1 AND user_id = $2 ORDER BY created_at DESC, endpoint LIMIT $3)`,
              [companyId, userId, MAX_PUSH_SUBSCRIPTIONS_PER_USER],
            );
          }),
      remove: async (companyId, userId, endpoint) =>
        ((await pool.query("DELETE FROM push_subscriptions WHERE company_id = $1 AND user_id = $2 AND endpoint = $3", [companyId, userId, endpoint])).rowCount ?? 0) > 0,
    },
    notificationsSent: {
      record: async (companyId, row) =>
        (
          (
            await pool.query(
              `INSERT INTO notifications_sent (company_id, user_id, channel, event, summary, sent_at, message_id) VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (company_id, user_id, message_id) DO NOTHING`,
              [companyId, row.userId, row.channel, row.event, row.summary, row.sentAt, row.messageId],
            )
          ).rowCount ?? 0
        ) > 0,
      has: async (companyId, userId, messageId) =>
        (await one(pool, "SELECT 1 FROM notifications_sent WHERE company_id = $1 AND user_id = $2 AND message_id = $3", [companyId, userId, messageId])) !== undefined,
      list: (companyId, userId) =>
        userId === undefined
          ? all<SentNotification>(pool, `SELECT ${SENT} FROM notifications_sent n JOIN users u ON u.id = n.user_id WHERE n.company_id = $1 ORDER BY n.sent_at DESC, n.id DESC LIMIT $2`, [
              companyId,
              SENT_NOTIFICATIONS_SHOWN,
            ])
          : all<SentNotification>(
              pool,
              `SELECT ${SENT} FROM notifications_sent n JOIN users u ON u.id = n.user_id WHERE n.company_id = $1 AND n.user_id = $2 ORDER BY n.sent_at DESC, n.id DESC LIMIT $3`,
              [companyId, userId, SENT_NOTIFICATIONS_SHOWN],
            ),
    },
    outboxSource: () => outbox.source(),
    pendingOutboxRows: async () => (await one<{ count: number }>(pool, `SELECT COUNT(*)::int AS count FROM "${trussSchema}".outbox`))!.count,
    close: () => pool.end(),
  };
}
