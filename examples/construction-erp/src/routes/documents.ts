import type { FastifyInstance } from "fastify";
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
 * the socket's `document:*` events: the resolver decides stale updates and
 * the company hears `document:updated` for every commit. A conflict answers
 * 409 with each conflicting field's base, current and incoming value.
 */
export function registerDocumentRoutes(api: FastifyInstance, { realtime, documents }: RouteContext): void {
  api.get("/documents", async (request) => documents.list(request.principal.companyId));

  api.get("/documents/:type/:id", async (request) => {
    const { type, id } = parseInput(keyParams, request.params);
    return realtime.documents.get(request.principal.companyId, type, id);
  });

  api.patch("/documents/:type/:id", async (request, reply) => {
    const { type, id } = parseInput(keyParams, request.params);
    const { companyId, userId } = request.principal;
    const result = await realtime.documents.update(companyId, type, id, parseInput(updateBody, request.body), userId);
    return reply.code(result.status === "conflict" ? 409 : 200).send(result);
  });

  api.get("/documents/:type/:id/history", async (request) => {
    const { type, id } = parseInput(keyParams, request.params);
    const { limit } = parseInput(historyQuery, request.query);
    return realtime.documents.history(request.principal.companyId, type, id, limit);
  });

  api.post("/documents/:type/:id/rollback", async (request) => {
    const { type, id } = parseInput(keyParams, request.params);
    const { toVersion } = parseInput(rollbackBody, request.body);
    const { companyId, userId } = request.principal;
    // A document the company does not have is "not found", not a missing version of it.
    await realtime.documents.get(companyId, type, id);
    return realtime.documents.rollback(companyId, type, id, toVersion, userId);
  });
}
