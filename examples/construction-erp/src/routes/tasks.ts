import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import type { Task } from "../catalog.js";
import { HttpError, notFound, parseInput } from "../http-errors.js";
import { notification } from "../notifications.js";
import type { Announcer } from "../store/types.js";
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
    access.visible(request.principal, await repos.tasks.list(request.principal.companyId), (task) => ({ action: "task:read", project: task.projectId })),
  );

  api.post("/tasks", async (request, reply) => {
    const { companyId } = request.principal;
    const fields = parseInput(createBody, request.body);
    if (!(await repos.projects.get(companyId, fields.projectId))) throw notFound("project", fields.projectId);
    await access.require(request.principal, { action: "task:manage", project: fields.projectId, resource: `project ${fields.projectId}` });
    if (fields.assigneeId !== null) await requireAssignee(context, companyId, fields.assigneeId, fields.projectId);
    const announce = await assignmentAnnouncement(context, request);
    const task = await repos.tasks.create(companyId, fields, (created, out) => {
      if (created.assigneeId) announce(created, out);
    });
    return reply.code(201).send(task);
  });

  api.post("/tasks/:id/assign", async (request) => {
    const { id } = parseInput(idParams, request.params);
    const { companyId } = request.principal;
    const { assigneeId } = parseInput(assignBody, request.body);
    const existing = await repos.tasks.get(companyId, id);
    if (!existing) throw notFound("task", id);
    await access.require(request.principal, { action: "task:manage", project: existing.projectId, resource: `task ${id}` });
    await requireAssignee(context, companyId, assigneeId, existing.projectId);
    const task = await repos.tasks.assign(companyId, id, assigneeId, await assignmentAnnouncement(context, request));
    if (!task) throw notFound("task", id);
    return task;
  });
}

/**
 * A task may only go to a user of the same company ("not found" otherwise)
 * who may see its project: a subcontractor assigned to it, or staff.
 */
async function requireAssignee({ repos, access }: RouteContext, companyId: string, userId: string, projectId: string): Promise<void> {
  const assignee = await repos.users.get(companyId, userId);
  if (!assignee) throw new HttpError(404, "NOT_FOUND", `No user ${userId} in your company.`);
  if ((await access.decide({ companyId, userId }, { action: "task:read", project: projectId })) !== true) {
    throw new HttpError(409, "NOT_ASSIGNED", `${assignee.name} is not assigned to project ${projectId}, so they could not see the task.`);
  }
}

/** What assigning a task announces, in the assignment's transaction: `task:assigned` and a notification to the assignee's inbox. */
async function assignmentAnnouncement({ repos }: RouteContext, request: FastifyRequest): Promise<(task: Task, out: Announcer) => void> {
  const { companyId, userId } = request.principal;
  const by = (await repos.users.get(companyId, userId))?.name ?? "A colleague";
  return (task, out) => {
    const assignee = out.toUser(companyId, task.assigneeId!);
    // The data, for the lists; the sentence below is what is pushed or e-mailed if no device takes it.
    assignee.emit("task:assigned", { task, assignedBy: userId }, { undelivered: false });
    assignee.emit("notification:new", notification("task", "New task for you", `${by} assigned you "${task.title}".`));
  };
}
