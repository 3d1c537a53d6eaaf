import type { FastifyInstance } from "fastify";
import { createRequestVerifier } from "../auth.js";

/**
 * Requires a valid bearer token on every route of `scope`, verified exactly
 * as the Truss engine verifies a socket's token, and puts the principal on
 * `request.principal`. Company scoping in the routes starts from it.
 */
export function requireToken(scope: FastifyInstance, jwtSecret: string): void {
  const verify = createRequestVerifier(jwtSecret);
  scope.decorateRequest("principal", null as never);
  scope.addHook("onRequest", async (request) => {
    request.principal = await verify(request.headers.authorization, request.ip);
  });
}
