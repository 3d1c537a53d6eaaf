import type { Authenticator } from "@truss/core";
import type { FastifyInstance } from "fastify";
import { createRequestVerifier } from "../auth.js";

/**
 * Requires a valid bearer token on every route of `scope`, verified by the
 * authenticator the Truss engine verifies a socket's token with (so a
 * removed user is refused by both), and puts the principal on
 * `request.principal`. Company scoping in the routes starts from it.
 */
export function requireToken(scope: FastifyInstance, authenticator: Authenticator): void {
  const verify = createRequestVerifier(authenticator);
  scope.decorateRequest("principal", null as never);
  scope.addHook("onRequest", async (request) => {
    request.principal = await verify(request.headers.authorization, request.ip);
  });
}
