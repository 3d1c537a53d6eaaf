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
 * Tasks. A subcontractor sees the tasks of their projects; staff create and
 * assign them. Assigning one sends `task:assigned` and a notification to the
 * assignee durably, so they see it on their phone even if it was off.
 */
export function registerTaskRoutes(api: FastifyInstance, context: RouteContext): void {
  const { repos, access } = context;

  api.get("/tasks", async (request) =>
    access.visible(request.principal, repos.tasks.list(request.principal.companyId), (task) => ({ action: "task:read", project: task.projectId })),
  );

  api.post("/tasks", async (request, reply) => {
    const { companyId } = request.principal;
    const fields = parseInput(createBody, request.body);
    if (!repos.projects.get(companyId, fields.projectId)) throw notFound("project", fields.projectId);
    access.require(request.principal, { action: "task:manage", project: fields.projectId, resource: `project ${fields.projectId}` });
    if (fields.assigneeId !== null) requireAssignee(context, companyId, fields.assigneeId, fields.projectId);
    const task = repos.tasks.create(companyId, fields);
    if (task.assigneeId) await announceAssignment(context, request, task);
    return reply.code(201).send(task);
  });

  api.post("/tasks/:id/assign", async (request) => {
    const { id } = parseInput(idParams, request.params);
    const { companyId } = request.principal;
    const { assigneeId } = parseInput(assignBody, request.body);
    const existing = repos.tasks.get(companyId, id);
    if (!existing) throw notFound("task", id);
    access.require(request.principal, { action: "task:manage", project: existing.projectId, resource: `task ${id}` });
    requireAssignee(context, companyId, assigneeId, existing.projectId);
    const task = repos.tasks.assign(companyId, id, assigneeId);
    if (!task) throw notFound("task", id);
    await announceAssignment(context, request, task);
    return task;
  });
}

/**
 * A task may only go to a user of the same company ("not found" otherwise)
 * who may see its project: a subcontractor assigned to it, or staff.
 */
function requireAssignee({ repos, access }: RouteContext, companyId: string, userId: string, projectId: string): void {
  const assignee = repos.users.get(companyId, userId);
  if (!assignee) throw new HttpError(404, "NOT_FOUND", `No user ${userId} in your company.`);
  if (access.decide({ companyId, userId }, { action: "task:read", project: projectId }) !== true) {
    throw new HttpError(409, "NOT_ASSIGNED", `${assignee.name} is not assigned to project ${projectId}, so they could not see the task.`);
  }
}

async function announceAssignment({ realtime, repos }: RouteContext, request: FastifyRequest, task: Task): Promise<void> {
  const assignee = { companyId: request.principal.companyId, userId: task.assigneeId! };
  const by = repos.users.get(request.principal.companyId, request.principal.userId)?.name ?? "A colleague";
  await sendToUser(realtime, request.log, assignee, "task:assigned", { task, assignedBy: request.principal.userId });
  await sendToUser(realtime, request.log, assignee, "notification:new", notification("task", "New task for you", `${by} assigned you "${task.title}".`));
}
