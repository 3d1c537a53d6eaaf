import { TrussError, type Principal } from "@truss/core";
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { expenseSubmissionSchema, type Expense } from "../catalog.js";
import { HttpError, notFound, parseInput } from "../http-errors.js";
import { notification, sendToUser, type WarningLogger } from "../notifications.js";
import { projectTopic } from "../topics.js";
import type { RouteContext } from "./context.js";

const idParams = z.object({ id: z.string() });
const rejectBody = z.object({ reason: z.string().trim().max(500).nullable().default(null) });

const money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 0 });

/**
 * Expenses and their approval. A subcontractor sees and submits only their
 * own, on their projects. The submitter hears the decision durably
 * (`expense:approved` / `expense:rejected` plus a `notification:new`, through
 * their inbox), and an approval's new project spend goes to the project's
 * topic as `project:updated`.
 *
 * An expense is submitted through either door, with the same checks: `POST
 * /api/expenses`, or the `expense:submit` event, which the dashboard queues
 * in its outbox while offline. The event carries the write's mutation id,
 * stored with the expense, so a resend answers with the first expense.
 */
export function registerExpenseRoutes(api: FastifyInstance, context: RouteContext): void {
  const { repos, access, realtime } = context;
  api.get("/expenses", async (request) =>
    access.visible(request.principal, repos.expenses.list(request.principal.companyId), (expense) => ({
      action: "expense:read",
      project: expense.projectId,
      owner: expense.submittedBy,
    })),
  );

  api.post("/expenses", async (request, reply) => {
    const expense = await submitExpense(context, request.principal, parseInput(expenseSubmissionSchema, request.body), request.log);
    return reply.code(201).send(expense);
  });

  // The engine validated the payload against the catalog, and its policy checked the sender is still a member.
  realtime.handle("expense:submit", async (fields, { principal, mutationId }) => {
    try {
      return await submitExpense(context, principal, fields, api.log, mutationId);
    } catch (error) {
      // The REST door's refusals, in the engine's terms: final for the outbox, which then tells the dashboard.
      if (error instanceof HttpError && (error.code === "NOT_FOUND" || error.code === "FORBIDDEN")) throw new TrussError(error.code, error.message);
      // Another process held the database past the busy timeout: the outbox sends the same write again later.
      if ((error as { code?: unknown }).code === "SQLITE_BUSY") throw new TrussError("STORE_UNAVAILABLE", "The database is busy; try again.");
      throw error;
    }
  });

  for (const status of ["approved", "rejected"] as const) {
    const action = status === "approved" ? "approve" : "reject";
    api.post(`/expenses/:id/${action}`, async (request) => {
      const { id } = parseInput(idParams, request.params);
      const { companyId, userId } = request.principal;
      access.require(request.principal, { action: "expense:decide" });
      const { reason } = status === "rejected" ? parseInput(rejectBody, request.body) : { reason: null };
      const existing = repos.expenses.get(companyId, id);
      if (!existing) throw notFound("expense", id);
      const decided = repos.expenses.decide(companyId, id, { status, decidedBy: userId, reason });
      if (!decided) throw new HttpError(409, "ALREADY_DECIDED", `Expense ${id} was already ${existing.status}.`);
      const { expense, project } = decided;

      const recipient = { companyId, userId: expense.submittedBy };
      await sendToUser(realtime, request.log, recipient, status === "approved" ? "expense:approved" : "expense:rejected", expense);
      const manager = repos.users.get(companyId, userId)?.name ?? "A manager";
      const body = `${manager} ${status} "${expense.description}" (${money.format(expense.amount)})${reason ? `: ${reason}` : "."}`;
      await sendToUser(realtime, request.log, recipient, "notification:new", notification("expense", `Expense ${status}`, body));
      if (project) realtime.toTopic(companyId, projectTopic(project.id)).emit("project:updated", project);
      return expense;
    });
  }
}

/**
 * Creates an expense for its submitter after the policy's check, and tells
 * the managers. With a `mutationId` (the event door), a repeat creates
 * nothing and answers with the first expense; the managers' notifications
 * carry idempotency keys, so a repeat after a send that failed half-way
 * completes them without doubling any.
 *
 * @throws HttpError 404 for a project the company does not have, or the policy's refusal.
 */
async function submitExpense(
  { repos, access, realtime }: RouteContext,
  principal: Principal,
  fields: z.output<typeof expenseSubmissionSchema>,
  log: WarningLogger,
  mutationId?: string,
): Promise<Expense> {
  const { companyId, userId } = principal;
  const project = repos.projects.get(companyId, fields.projectId);
  if (!project) throw notFound("project", fields.projectId);
  access.require(principal, { action: "expense:submit", project: project.id, resource: `project ${project.id}` });
  const submission = { ...fields, submittedBy: userId };
  const expense = mutationId === undefined ? repos.expenses.create(companyId, submission) : repos.expenses.createOnce(companyId, submission, mutationId).expense;
  const submitter = repos.users.get(companyId, userId)?.name ?? "Someone";
  for (const manager of repos.users.managers(companyId)) {
    if (manager.id === userId) continue;
    await sendToUser(
      realtime,
      log,
      { companyId, userId: manager.id },
      "notification:new",
      notification("expense", "Expense waiting for approval", `${submitter}: ${expense.description}, ${money.format(expense.amount)} on ${project.name}.`),
      { idempotencyKey: `expense-submitted:${expense.id}` },
    );
  }
  return expense;
}
