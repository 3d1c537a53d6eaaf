import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { projectSchema } from "../catalog.js";
import { notFound, parseInput } from "../http-errors.js";
import { companyTopic, projectTopic } from "../topics.js";
import type { RouteContext } from "./context.js";

const idParams = z.object({ id: z.string() });
const projectFields = z.object({
  name: z.string().trim().min(1).max(120),
  site: z.string().trim().max(200),
  status: projectSchema.shape.status,
  budget: z.number().nonnegative().max(1e12),
});
const createBody = projectFields.extend({ site: projectFields.shape.site.default(""), status: projectFields.shape.status.default("planned") });
const updateBody = projectFields
  .partial()
  .strict()
  .refine((changes) => Object.keys(changes).length > 0, "name at least one field to change");

/**
 * Projects and their budgets. A subcontractor sees only the projects they are
 * assigned to. A new project goes to the staff's `company:projects` feed as
 * `project:created`; a change or deletion goes to the project's own topic as
 * `project:updated` or `project:deleted`, so it reaches only the people who
 * may see that project.
 */
export function registerProjectRoutes(api: FastifyInstance, { repos, access }: RouteContext): void {
  const about = (id: string) => ({ project: id, resource: `project ${id}` });

  api.get("/projects", async (request) =>
    access.visible(request.principal, await repos.projects.list(request.principal.companyId), (project) => ({ action: "project:read", ...about(project.id) })),
  );

  api.get("/projects/:id", async (request) => {
    const { id } = parseInput(idParams, request.params);
    const project = await repos.projects.get(request.principal.companyId, id);
    if (!project) throw notFound("project", id);
    await access.require(request.principal, { action: "project:read", ...about(id) });
    return project;
  });

  api.post("/projects", async (request, reply) => {
    const { companyId } = request.principal;
    await access.require(request.principal, { action: "project:create" });
    const project = await repos.projects.create(companyId, parseInput(createBody, request.body), (created, out) =>
      out.toTopic(companyId, companyTopic("projects")).emit("project:created", created),
    );
    return reply.code(201).send(project);
  });

  api.patch("/projects/:id", async (request) => {
    const { id } = parseInput(idParams, request.params);
    const { companyId } = request.principal;
    if (!(await repos.projects.get(companyId, id))) throw notFound("project", id);
    await access.require(request.principal, { action: "project:edit", ...about(id) });
    const project = await repos.projects.update(companyId, id, parseInput(updateBody, request.body), (updated, out) =>
      out.toTopic(companyId, projectTopic(id)).emit("project:updated", updated),
    );
    if (!project) throw notFound("project", id);
    return project;
  });

  api.delete("/projects/:id", async (request, reply) => {
    const { id } = parseInput(idParams, request.params);
    const { companyId } = request.principal;
    if (!(await repos.projects.get(companyId, id))) throw notFound("project", id);
    await access.require(request.principal, { action: "project:delete", ...about(id) });
    const removed = await repos.projects.remove(companyId, id, (_removed, out) => out.toTopic(companyId, projectTopic(id)).emit("project:deleted", { id }));
    if (!removed) throw notFound("project", id);
    return reply.code(204).send();
  });
}
