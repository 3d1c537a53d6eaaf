import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { isManager } from "../auth.js";
import { projectSchema } from "../catalog.js";
import { forbidden, notFound, parseInput } from "../http-errors.js";
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
 * Projects and their budgets. Every change is broadcast to the company:
 * `project:created`, `project:updated`, `project:deleted`.
 */
export function registerProjectRoutes(api: FastifyInstance, { repos, realtime }: RouteContext): void {
  api.get("/projects", async (request) => repos.projects.list(request.principal.companyId));

  api.get("/projects/:id", async (request) => {
    const { id } = parseInput(idParams, request.params);
    const project = repos.projects.get(request.principal.companyId, id);
    if (!project) throw notFound("project", id);
    return project;
  });

  api.post("/projects", async (request, reply) => {
    const { companyId } = request.principal;
    const project = repos.projects.create(companyId, parseInput(createBody, request.body));
    realtime.toCompany(companyId).emit("project:created", project);
    return reply.code(201).send(project);
  });

  api.patch("/projects/:id", async (request) => {
    const { id } = parseInput(idParams, request.params);
    const { companyId } = request.principal;
    const project = repos.projects.update(companyId, id, parseInput(updateBody, request.body));
    if (!project) throw notFound("project", id);
    realtime.toCompany(companyId).emit("project:updated", project);
    return project;
  });

  api.delete("/projects/:id", async (request, reply) => {
    const { id } = parseInput(idParams, request.params);
    const { companyId } = request.principal;
    if (!isManager(request.principal)) throw forbidden("delete projects");
    if (!repos.projects.remove(companyId, id)) throw notFound("project", id);
    realtime.toCompany(companyId).emit("project:deleted", { id });
    return reply.code(204).send();
  });
}
