import { TrussError, type Principal } from "@truss/core";
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { expenseSubmissionSchema, type Expense } from "../catalog.js";
import { HttpError, notFound, parseInput } from "../http-errors.js";
import { notification } from "../notifications.js";
import type { Announcer } from "../store/types.js";
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
    access.visible(request.principal, await repos.expenses.list(request.principal.companyId), (expense) => ({
      action: "expense:read",
      project: expense.projectId,
      owner: expense.submittedBy,
    })),
  );

  api.post("/expenses", async (request, reply) => {
    const expense = await submitExpense(context, request.principal, parseInput(expenseSubmissionSchema, request.body));
    return reply.code(201).send(expense);
  });

  // The engine validated the payload against the catalog, and its policy checked the sender is still a member.
  realtime.handle("expense:submit", async (fields, { principal, mutationId }) => {
    try {
      return await submitExpense(context, principal, fields, mutationId);
    } catch (error) {
      // The REST door's refusals, in the engine's terms: final for the outbox, which then tells the dashboard.
      if (error instanceof HttpError && (error.code === "NOT_FOUND" || error.code === "FORBIDDEN")) throw new TrussError(error.code, error.message);
      // The database is busy or out of reach: the client's outbox sends the same write again later.
      if (isTransientDatabaseError(error)) throw new TrussError("STORE_UNAVAILABLE", "The database is busy or unreachable; try again.");
      throw error;
    }
  });

  for (const status of ["approved", "rejected"] as const) {
    const action = status === "approved" ? "approve" : "reject";
    api.post(`/expenses/:id/${action}`, async (request) => {
      const { id } = parseInput(idParams, request.params);
      const { companyId, userId } = request.principal;
      await access.require(request.principal, { action: "expense:decide" });
      const { reason } = status === "rejected" ? parseInput(rejectBody, request.body) : { reason: null };
      const existing = await repos.expenses.get(companyId, id);
      if (!existing) throw notFound("expense", id);
      const manager = (await repos.users.get(companyId, userId))?.name ?? "A manager";
      // The decision, the project's spend and the three events commit together: the outbox publishes
      // them once the transaction commits, and never if it rolls back.
      const decided = await repos.expenses.decide(companyId, id, { status, decidedBy: userId, reason }, ({ expense, project }, out) => {
        const submitter = out.toUser(companyId, expense.submittedBy);
        // The data, for the lists; the sentence below is what is pushed or e-mailed if no device takes it.
        submitter.emit(status === "approved" ? "expense:approved" : "expense:rejected", expense, { undelivered: false });
        const body = `${manager} ${status} "${expense.description}" (${money.format(expense.amount)})${reason ? `: ${reason}` : "."}`;
        submitter.emit("notification:new", notification("expense", `Expense ${status}`, body));
        if (project) out.toTopic(companyId, projectTopic(project.id)).emit("project:updated", project);
      });
      if (!decided) throw new HttpError(409, "ALREADY_DECIDED", `Expense ${id} was already ${existing.status}.`);
      const { expense } = decided;
      return expense;
    });
  }
}

/**
 * Creates an expense for its submitter after the policy's check, and tells
 * the managers through the outbox, in the expense's transaction. With a
 * `mutationId` (the event door), a repeat creates and announces nothing and
 * answers with the first expense; the notifications also carry idempotency
 * keys, so one relayed twice reaches each manager once.
 *
 * @throws HttpError 404 for a project the company does not have, or the policy's refusal.
 */
async function submitExpense(
  { repos, access }: RouteContext,
  principal: Principal,
  fields: z.output<typeof expenseSubmissionSchema>,
  mutationId?: string,
): Promise<Expense> {
  const { companyId, userId } = principal;
  const project = await repos.projects.get(companyId, fields.projectId);
  if (!project) throw notFound("project", fields.projectId);
  await access.require(principal, { action: "expense:submit", project: project.id, resource: `project ${project.id}` });
  const submission = { ...fields, submittedBy: userId };
  const submitter = (await repos.users.get(companyId, userId))?.name ?? "Someone";
  const managers = await repos.users.managers(companyId);
  // The managers' notifications commit with the expense; a repeat of the same mutation creates and announces nothing.
  const announce = (expense: Expense, out: Announcer) => {
    for (const manager of managers) {
      if (manager.id === userId) continue;
      out
        .toUser(companyId, manager.id)
        .emit(
          "notification:new",
          notification("expense", "Expense waiting for approval", `${submitter}: ${expense.description}, ${money.format(expense.amount)} on ${project.name}.`),
          { idempotencyKey: `expense-submitted:${expense.id}` },
        );
    }
  };
  return mutationId === undefined
    ? repos.expenses.create(companyId, submission, announce)
    : (await repos.expenses.createOnce(companyId, submission, mutationId, announce)).expense;
}

/**
 * Whether a database error may pass if the same write is sent again: SQLite
 * held by another process past the busy timeout, or PostgreSQL unreachable,
 * shutting down, or ending the transaction in a deadlock or a serialization
 * failure.
 */
function isTransientDatabaseError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return error instanceof Error && /timeout exceeded when trying to connect|Connection terminated/i.test(error.message);
  return code === "SQLITE_BUSY" || code === "ECONNREFUSED" || code === "ECONNRESET" || code === "40001" || code === "40P01" || code.startsWith("08") || code.startsWith("57P");
}
