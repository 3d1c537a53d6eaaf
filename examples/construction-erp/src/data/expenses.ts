import type { Expense, Project } from "../catalog.js";
import type { Db } from "../db.js";
import { newId } from "./ids.js";
import { createProjects } from "./projects.js";

const COLUMNS =
  "id, project_id AS projectId, submitted_by AS submittedBy, description, amount, status, decided_by AS decidedBy, decided_at AS decidedAt, reason, created_at AS createdAt";

/** A manager's decision on an expense. */
export interface Decision {
  status: "approved" | "rejected";
  decidedBy: string;
  reason: string | null;
}

/** Expenses, each call scoped to one company. */
export function createExpenses(db: Db, now: () => number = Date.now) {
  const list = db.prepare<[string], Expense>(`SELECT ${COLUMNS} FROM expenses WHERE company_id = ? ORDER BY created_at DESC`);
  const get = db.prepare<[string, string], Expense>(`SELECT ${COLUMNS} FROM expenses WHERE company_id = ? AND id = ?`);
  const insert = db.prepare(
    "INSERT INTO expenses (id, company_id, project_id, submitted_by, description, amount, status, created_at) VALUES (@id, @companyId, @projectId, @submittedBy, @description, @amount, 'pending', @createdAt)",
  );
  // `status = 'pending'` makes the decision a compare-and-set: two managers
  // clicking at once cannot both approve (and book the amount twice).
  const decide = db.prepare(
    `UPDATE expenses SET status = @status, decided_by = @decidedBy, decided_at = @decidedAt, reason = @reason
     WHERE company_id = @companyId AND id = @id AND status = 'pending'`,
  );

  const projects = createProjects(db, now);
  const decideAndBook = db.transaction(
    (companyId: string, id: string, decision: Decision): { expense: Expense; project: Project | undefined } | undefined => {
      if (decide.run({ ...decision, companyId, id, decidedAt: now() }).changes === 0) return undefined;
      const expense = get.get(companyId, id)!;
      const project = decision.status === "approved" ? projects.addSpent(companyId, expense.projectId, expense.amount) : undefined;
      return { expense, project };
    },
  );

  return {
    list: (companyId: string) => list.all(companyId),
    get: (companyId: string, id: string) => get.get(companyId, id),
    create(companyId: string, fields: Pick<Expense, "projectId" | "submittedBy" | "description" | "amount">): Expense {
      const id = newId("e");
      insert.run({ ...fields, id, companyId, createdAt: now() });
      return get.get(companyId, id)!;
    },
    /**
     * Approves or rejects a pending expense; an approval books the amount
     * against its project in the same transaction. Returns the decided
     * expense (and the project when its spend changed), or `undefined` when
     * the expense is not the company's or no longer pending.
     */
    decide: (companyId: string, id: string, decision: Decision) => decideAndBook(companyId, id, decision),
  };
}

/** See {@link createExpenses}. */
export type Expenses = ReturnType<typeof createExpenses>;
