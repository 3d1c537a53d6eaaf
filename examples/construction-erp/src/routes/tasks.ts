import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import type { Task } from "../catalog.js";
import { HttpError, notFound, parseInput } from "../http-errors.js";
import { notification, sendToUser } from "../notifications.js";
import type { RouteContext } from "./context.js";

const idParams = z.object({ id: z.string() });
const createBody = z.object({
  projectId: z.string(),
  title: z.string().trim().min(1).max(200),
  assigneeId: z.string().nullable().default(null),
  dueDate: z.iso.date().nullable().default(null),
});
const assignBody = z.object({ assigneeId: z.string() });

/**
 * Tasks. Assigning one sends `task:assigned` and a notification to the
 * assignee durably, so they see it on their phone even if it was off.
 */
export function registerTaskRoutes(api: FastifyInstance, context: RouteContext): void {
  const { repos } = context;

  api.get("/tasks", async (request) => repos.tasks.list(request.principal.companyId));

  api.post("/tasks", async (request, reply) => {
    const { companyId } = request.principal;
    const fields = parseInput(createBody, request.body);
    if (!repos.projects.get(companyId, fields.projectId)) throw notFound("project", fields.projectId);
    if (fields.assigneeId !== null) requireColleague(context, companyId, fields.assigneeId);
    const task = repos.tasks.create(companyId, fields);
    if (task.assigneeId) await announceAssignment(context, request, task);
    return reply.code(201).send(task);
  });

  api.post("/tasks/:id/assign", async (request) => {
    const { id } = parseInput(idParams, request.params);
    const { companyId } = request.principal;
    const { assigneeId } = parseInput(assignBody, request.body);
    requireColleague(context, companyId, assigneeId);
    const task = repos.tasks.assign(companyId, id, assigneeId);
    if (!task) throw notFound("task", id);
    await announceAssignment(context, request, task);
    return task;
  });
}

/** A task may only go to a user of the same company; anyone else is "not found". */
function requireColleague({ repos }: RouteContext, companyId: string, userId: string): void {
  if (!repos.users.get(companyId, userId)) throw new HttpError(404, "NOT_FOUND", `No user ${userId} in your company.`);
}

async function announceAssignment({ realtime, repos }: RouteContext, request: FastifyRequest, task: Task): Promise<void> {
  const assignee = { companyId: request.principal.companyId, userId: task.assigneeId! };
  const by = repos.users.get(request.principal.companyId, request.principal.userId)?.name ?? "A colleague";
  await sendToUser(realtime, request.log, assignee, "task:assigned", { task, assignedBy: request.principal.userId });
  await sendToUser(realtime, request.log, assignee, "notification:new", notification("task", "New task for you", `${by} assigned you "${task.title}".`));
}
