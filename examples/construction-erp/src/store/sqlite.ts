/**
 * {@link ErpData} on the embedded SQLite file: the synchronous repositories
 * of `data/`, with each announcing write and its outbox rows in one
 * `BEGIN IMMEDIATE` transaction. better-sqlite3 runs a transaction to its end
 * without yielding, so no other request's statements can fall inside it.
 *
 * @module
 */
import type { OutboxLimits } from "@truss/core";
import { createRepositories } from "../data/index.js";
import type { Db } from "../db.js";
import type { SqliteDocumentStore } from "../sqlite-document-store.js";
import { recordingAnnouncer } from "./announcer.js";
import { sqliteOutbox } from "./sqlite-outbox.js";
import type { Announce, BeforeCommit, ErpData } from "./types.js";

/** Options of {@link sqliteErpData}. */
export interface SqliteErpDataOptions {
  /** The engine's limits, which outbox data is checked against at the write. */
  limits?: OutboxLimits;
  /** See {@link BeforeCommit}. */
  beforeCommit?: BeforeCommit;
}

/** The ERP's data on one SQLite connection, publishing through the file's own outbox table. */
export function sqliteErpData(db: Db, documents: SqliteDocumentStore, options: SqliteErpDataOptions = {}): ErpData {
  const repos = createRepositories(db);
  const outbox = sqliteOutbox(db, options.limits ? { limits: options.limits } : {});

  /** Runs `work` and writes what `announce` says about its result, in one transaction; then wakes the relay. */
  const write = <T>(operation: string, work: () => T, announce: Announce<NonNullable<T>> | undefined, changed: (result: T) => boolean = (r) => r !== undefined && r !== false): T => {
    let announced = false;
    const result = db
      .transaction(() => {
        const value = work();
        if (announce && changed(value)) {
          const { out, announcements } = recordingAnnouncer();
          announce(value as NonNullable<T>, out);
          outbox.insert(announcements);
          announced = announcements.length > 0;
        }
        options.beforeCommit?.(operation);
        return value;
      })
      .immediate();
    if (announced) outbox.notify();
    return result;
  };

  return {
    kind: "sqlite",
    users: {
      findForLogin: async (email) => repos.users.findForLogin(email),
      get: async (companyId, id) => repos.users.get(companyId, id),
      remove: async (companyId, id) => repos.users.remove(companyId, id),
      list: async (companyId) => repos.users.list(companyId),
      managers: async (companyId) => repos.users.managers(companyId),
      company: async (companyId) => repos.users.company(companyId),
    },
    projects: {
      list: async (companyId) => repos.projects.list(companyId),
      get: async (companyId, id) => repos.projects.get(companyId, id),
      create: async (companyId, fields, announce) => write("projects.create", () => repos.projects.create(companyId, fields), announce),
      update: async (companyId, id, changes, announce) => write("projects.update", () => repos.projects.update(companyId, id, changes), announce),
      remove: async (companyId, id, announce) => write("projects.remove", () => repos.projects.remove(companyId, id), announce as Announce<boolean> | undefined),
    },
    assignments: {
      projectsOf: async (companyId, userId) => repos.assignments.projectsOf(companyId, userId),
    },
    documentProjects: {
      projectOf: async (companyId, type, id) => repos.documentProjects.projectOf(companyId, type, id),
      all: async (companyId) => repos.documentProjects.all(companyId),
    },
    tasks: {
      list: async (companyId) => repos.tasks.list(companyId),
      get: async (companyId, id) => repos.tasks.get(companyId, id),
      create: async (companyId, fields, announce) => write("tasks.create", () => repos.tasks.create(companyId, fields), announce),
      assign: async (companyId, id, assigneeId, announce) => write("tasks.assign", () => repos.tasks.assign(companyId, id, assigneeId), announce),
    },
    expenses: {
      list: async (companyId) => repos.expenses.list(companyId),
      get: async (companyId, id) => repos.expenses.get(companyId, id),
      create: async (companyId, fields, announce) => write("expenses.create", () => repos.expenses.create(companyId, fields), announce),
      createOnce: async (companyId, fields, mutationId, announce) =>
        write(
          "expenses.createOnce",
          () => repos.expenses.createOnce(companyId, fields, mutationId),
          announce && ((created, out) => announce(created.expense, out)),
          (created) => !created.duplicate,
        ),
      decide: async (companyId, id, decision, announce) => write("expenses.decide", () => repos.expenses.decide(companyId, id, decision), announce),
    },
    invoices: {
      list: async (companyId) => repos.invoices.list(companyId),
      get: async (companyId, id) => repos.invoices.get(companyId, id),
      pay: async (companyId, id, method, processedBy, announce) => write("invoices.pay", () => repos.invoices.pay(companyId, id, method, processedBy), announce),
    },
    inventory: {
      list: async (companyId) => repos.inventory.list(companyId),
      get: async (companyId, id) => repos.inventory.get(companyId, id),
      create: async (companyId, fields, announce) => write("inventory.create", () => repos.inventory.create(companyId, fields), announce),
      adjust: async (companyId, id, delta, announce) => write("inventory.adjust", () => repos.inventory.adjust(companyId, id, delta), announce),
    },
    documents: {
      list: async (companyId) => documents.list(companyId),
    },
    pushSubscriptions: {
      list: async (companyId, userId) => repos.pushSubscriptions.list(companyId, userId),
      save: async (companyId, userId, subscription) => repos.pushSubscriptions.save(companyId, userId, subscription),
      remove: async (companyId, userId, endpoint) => repos.pushSubscriptions.remove(companyId, userId, endpoint),
    },
    notificationsSent: {
      record: async (companyId, row) => repos.notificationsSent.record(companyId, row),
      has: async (companyId, userId, messageId) => repos.notificationsSent.has(companyId, userId, messageId),
      list: async (companyId, userId) => repos.notificationsSent.list(companyId, userId),
    },
    outboxSource: () => outbox.source(),
    pendingOutboxRows: async () => outbox.count(),
    async close() {
      db.close();
    },
  };
}
