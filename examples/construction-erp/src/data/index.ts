import type { Db } from "../db.js";
import { createExpenses } from "./expenses.js";
import { createInventory } from "./inventory.js";
import { createInvoices } from "./invoices.js";
import { createProjects } from "./projects.js";
import { createTasks } from "./tasks.js";
import { createUsers } from "./users.js";

/** Every table's queries, bound to one database. */
export function createRepositories(db: Db, now: () => number = Date.now) {
  return {
    users: createUsers(db),
    projects: createProjects(db, now),
    tasks: createTasks(db, now),
    expenses: createExpenses(db, now),
    invoices: createInvoices(db, now),
    inventory: createInventory(db, now),
  };
}

/** See {@link createRepositories}. */
export type Repositories = ReturnType<typeof createRepositories>;

export type { Company, User } from "./users.js";
export { InsufficientStockError } from "./inventory.js";
