import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { HttpError, notFound, parseInput } from "../http-errors.js";
import { notification, sendToUser } from "../notifications.js";
import { projectTopic } from "../topics.js";
import type { RouteContext } from "./context.js";

const idParams = z.object({ id: z.string() });
const createBody = z.object({
  projectId: z.string(),
  description: z.string().trim().min(1).max(200),
  amount: z.number().positive().max(1e9),
});
const rejectBody = z.object({ reason: z.string().trim().max(500).nullable().default(null) });

const money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 0 });

/**
 * Expenses and their approval. A subcontractor sees and submits only their
 * own, on their projects. The submitter hears the decision durably
 * (`expense:approved` / `expense:rejected` plus a `notification:new`, through
 * their inbox), and an approval's new project spend goes to the project's
 * topic as `project:updated`.
 */
export function registerExpenseRoutes(api: FastifyInstance, { repos, access, realtime }: RouteContext): void {
  api.get("/expenses", async (request) =>
    access.visible(request.principal, repos.expenses.list(request.principal.companyId), (expense) => ({
      action: "expense:read",
      project: expense.projectId,
      owner: expense.submittedBy,
    })),
  );

  api.post("/expenses", async (request, reply) => {
    const { companyId, userId } = request.principal;
    const fields = parseInput(createBody, request.body);
    const project = repos.projects.get(companyId, fields.projectId);
    if (!project) throw notFound("project", fields.projectId);
    access.require(request.principal, { action: "expense:submit", project: project.id, resource: `project ${project.id}` });
    const expense = repos.expenses.create(companyId, { ...fields, submittedBy: userId });
    const submitter = repos.users.get(companyId, userId)?.name ?? "Someone";
    for (const manager of repos.users.managers(companyId)) {
      if (manager.id === userId) continue;
      await sendToUser(
        realtime,
        request.log,
        { companyId, userId: manager.id },
        "notification:new",
        notification("expense", "Expense waiting for approval", `${submitter}: ${expense.description}, ${money.format(expense.amount)} on ${project.name}.`),
      );
    }
    return reply.code(201).send(expense);
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
