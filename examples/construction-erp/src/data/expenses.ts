import type { Expense, Project } from "../catalog.js";
import type { Db } from "../db.js";
import { newId } from "./ids.js";
import { createProjects } from "./projects.js";

const COLUMNS =
  "id, project_id AS projectId, submitted_by AS submittedBy, description, amount, status, decided_by AS decidedBy, decided_at AS decidedAt, reason, created_at AS createdAt";

/** What a submitter gives for a new expense. */
export type NewExpense = Pick<Expense, "projectId" | "submittedBy" | "description" | "amount">;

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
    "INSERT INTO expenses (id, company_id, project_id, submitted_by, description, amount, status, created_at, mutation_id) VALUES (@id, @companyId, @projectId, @submittedBy, @description, @amount, 'pending', @createdAt, @mutationId)",
  );
  const byMutation = db.prepare<[string, string, string], Expense>(`SELECT ${COLUMNS} FROM expenses WHERE company_id = ? AND submitted_by = ? AND mutation_id = ?`);
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

  const createOnce = db.transaction((companyId: string, fields: NewExpense, mutationId: string): { expense: Expense; duplicate: boolean } => {
    const first = byMutation.get(companyId, fields.submittedBy, mutationId);
    if (first) return { expense: first, duplicate: true };
    const id = newId("e");
    insert.run({ ...fields, id, companyId, createdAt: now(), mutationId });
    return { expense: get.get(companyId, id)!, duplicate: false };
  });

  return {
    list: (companyId: string) => list.all(companyId),
    get: (companyId: string, id: string) => get.get(companyId, id),
    create(companyId: string, fields: NewExpense): Expense {
      const id = newId("e");
      insert.run({ ...fields, id, companyId, createdAt: now(), mutationId: null });
      return get.get(companyId, id)!;
    },
    /**
     * Creates the expense once per `mutationId` of its submitter: a repeat
     * (the outbox sending the same write again after a lost answer) returns
     * the expense the first one created, with `duplicate` set, and adds no
     * row. The check and the insert run in one `BEGIN IMMEDIATE`
     * transaction, and the `expenses_by_mutation` unique index backs it, so
     * two server processes on one file cannot both insert.
     */
    createOnce: (companyId: string, fields: NewExpense, mutationId: string) => createOnce.immediate(companyId, fields, mutationId),
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
