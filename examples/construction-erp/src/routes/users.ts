import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { HttpError, notFound, parseInput } from "../http-errors.js";
import type { RouteContext } from "./context.js";

const idParams = z.object({ id: z.string() });

/**
 * The company directory, and removing someone from it. A removal is two
 * steps in this order: the database marks the user removed, so the
 * authenticator refuses their token from now on (REST and socket alike),
 * then `disconnectUser` closes every device they have open, on every node,
 * with `ACCESS_REVOKED`, which `@truss/client` does not retry.
 */
export function registerUserRoutes(api: FastifyInstance, { repos, access, realtime }: RouteContext): void {
  api.get("/users", async (request) => await repos.users.list(request.principal.companyId));

  api.delete("/users/:id", async (request) => {
    const { id } = parseInput(idParams, request.params);
    const { companyId, userId } = request.principal;
    await access.require(request.principal, { action: "user:remove" });
    if (id === userId) throw new HttpError(409, "CANNOT_REMOVE_SELF", "You cannot remove yourself; ask another manager.");
    const user = await repos.users.get(companyId, id);
    if (!user || !(await repos.users.remove(companyId, id))) throw notFound("user", id);
    const by = (await repos.users.get(companyId, userId))?.name ?? "A manager";
    const company = (await repos.users.company(companyId))?.name ?? "the company";
    const { sockets, complete } = await realtime.disconnectUser(companyId, id, { message: `${by} removed you from ${company}.` });
    request.log.info({ companyId, userId: id, sockets, complete }, "user removed and disconnected");
    return { id, name: user.name, disconnectedSockets: sockets, allNodesAnswered: complete };
  });
}
