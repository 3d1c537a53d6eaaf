import type { Db } from "../db.js";
import { createAssignments } from "./assignments.js";
import { createDocumentProjects } from "./document-projects.js";
import { createExpenses } from "./expenses.js";
import { createInventory } from "./inventory.js";
import { createInvoices } from "./invoices.js";
import { createNotificationsSent } from "./notifications-sent.js";
import { createProjects } from "./projects.js";
import { createPushSubscriptions } from "./push-subscriptions.js";
import { createTasks } from "./tasks.js";
import { createUsers } from "./users.js";

/** Every table's queries, bound to one database. */
export function createRepositories(db: Db, now: () => number = Date.now) {
  return {
    users: createUsers(db, now),
    projects: createProjects(db, now),
    assignments: createAssignments(db),
    documentProjects: createDocumentProjects(db),
    tasks: createTasks(db, now),
    expenses: createExpenses(db, now),
    invoices: createInvoices(db, now),
    inventory: createInventory(db, now),
    pushSubscriptions: createPushSubscriptions(db, now),
    notificationsSent: createNotificationsSent(db),
  };
}

/** See {@link createRepositories}. */
export type Repositories = ReturnType<typeof createRepositories>;

export type { Company, User } from "./users.js";
export { InsufficientStockError } from "./inventory.js";
export type { NewSentNotification, NotificationChannel, SentNotification } from "./notifications-sent.js";
export type { PushSubscriptionRecord } from "./push-subscriptions.js";
