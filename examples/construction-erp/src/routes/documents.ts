import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { parseInput } from "../http-errors.js";
import type { RouteContext } from "./context.js";

const keyParams = z.object({ type: z.string().min(1).max(64), id: z.string().min(1).max(128) });
const updateBody = z.object({
  baseVersion: z.number().int().nonnegative(),
  changes: z.record(z.string(), z.unknown()),
});
const historyQuery = z.object({ limit: z.coerce.number().int().min(1).max(100).default(20) });
const rollbackBody = z.object({ toVersion: z.number().int().positive() });

/**
 * Versioned documents (site reports) over REST, on the same engine path as
 * the socket's `document:*` events and behind the same policy: a
 * subcontractor reads and edits only their projects' documents, and only
 * managers roll back. The resolver decides stale updates, and the document's
 * watchers hear `document:updated` for every commit. A conflict answers 409
 * with each conflicting field's base, current and incoming value.
 */
export function registerDocumentRoutes(api: FastifyInstance, { repos, access, realtime }: RouteContext): void {
  const requireFor = async (request: FastifyRequest, action: "document:read" | "document:write" | "document:rollback") => {
    const { type, id } = parseInput(keyParams, request.params);
    await access.require(request.principal, await access.documentRequest(request.principal.companyId, action, type, id));
    return { companyId: request.principal.companyId, type, id };
  };

  api.get("/documents", async (request) => {
    const { companyId } = request.principal;
    const projects = await repos.documentProjects.all(companyId);
    const listed = (await repos.documents.list(companyId)).map((summary) => ({ ...summary, projectId: projects.get(`${summary.type}/${summary.id}`) ?? null }));
    return access.visible(request.principal, listed, (summary) => ({ action: "document:read", project: summary.projectId }));
  });

  api.get("/documents/:type/:id", async (request) => {
    const { companyId, type, id } = await requireFor(request, "document:read");
    return realtime.documents.get(companyId, type, id);
  });

  api.patch("/documents/:type/:id", async (request, reply) => {
    const { companyId, type, id } = await requireFor(request, "document:write");
    const result = await realtime.documents.update(companyId, type, id, parseInput(updateBody, request.body), request.principal.userId);
    return reply.code(result.status === "conflict" ? 409 : 200).send(result);
  });

  api.get("/documents/:type/:id/history", async (request) => {
    const { companyId, type, id } = await requireFor(request, "document:read");
    const { limit } = parseInput(historyQuery, request.query);
    return realtime.documents.history(companyId, type, id, limit);
  });

  api.post("/documents/:type/:id/rollback", async (request) => {
    const { companyId, type, id } = await requireFor(request, "document:rollback");
    const { toVersion } = parseInput(rollbackBody, request.body);
    // A document the company does not have is "not found", not a missing version of it.
    await realtime.documents.get(companyId, type, id);
    return realtime.documents.rollback(companyId, type, id, toVersion, request.principal.userId);
  });
}
