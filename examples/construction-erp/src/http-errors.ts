/**
 * How the REST API refuses requests: one JSON shape,
 * `{ error: { code, message } }`, for its own refusals, Truss's coded errors
 * and Fastify's, so the dashboard handles them all alike.
 *
 * @module
 */
import { isTrussError } from "@truss/core";
import type { ErrorCode } from "@truss/protocol";
import type { FastifyError, FastifyInstance } from "fastify";
import type { z } from "zod";

/** A refusal with an HTTP status and a code the client can branch on. */
export class HttpError extends Error {
  override readonly name = "HttpError";

  /**
   * @param statusCode - the HTTP status.
   * @param code - a stable, upper-case reason such as `NOT_FOUND`.
   * @param message - a sentence a person can act on.
   */
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A 404 for a row the caller's company does not have. Rows of other
 * companies get the same answer, so ids cannot be probed across tenants.
 */
export function notFound(what: string, id: string): HttpError {
  return new HttpError(404, "NOT_FOUND", `No ${what} ${id} in your company.`);
}

/**
 * Validates a request body or query with a zod schema.
 * @throws HttpError 400 `INVALID_PAYLOAD` naming each failing field.
 */
export function parseInput<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const details = result.error.issues
    .slice(0, 5)
    .map((issue) => (issue.path.length > 0 ? `${issue.path.join(".")}: ${issue.message}` : issue.message))
    .join("; ");
  throw new HttpError(400, "INVALID_PAYLOAD", `The request is invalid: ${details}`);
}

/** The HTTP status of each Truss error code a REST route can meet. */
const TRUSS_STATUS: Partial<Record<ErrorCode, number>> = {
  AUTH_MISSING_TOKEN: 401,
  AUTH_INVALID_TOKEN: 401,
  AUTH_WRONG_ALGORITHM: 401,
  AUTH_TOKEN_EXPIRED: 401,
  AUTH_TOKEN_NOT_YET_VALID: 401,
  AUTH_WRONG_ISSUER: 401,
  AUTH_WRONG_AUDIENCE: 401,
  AUTH_MISSING_CLAIMS: 401,
  ACCESS_REVOKED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  VERSION_NOT_FOUND: 409,
  INVALID_PAYLOAD: 400,
  PAYLOAD_TOO_LARGE: 413,
  STORE_UNAVAILABLE: 503,
  SERVER_SHUTTING_DOWN: 503,
};

/** Installs the error handler that gives every refusal the `{ error: { code, message } }` shape. */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | HttpError, request, reply) => {
    if (error instanceof HttpError) {
      return reply.code(error.statusCode).send({ error: { code: error.code, message: error.message } });
    }
    if (isTrussError(error)) {
      const statusCode = TRUSS_STATUS[error.code] ?? 500;
      return reply.code(statusCode).send({ error: { code: error.code, message: error.message } });
    }
    const statusCode = "statusCode" in error && typeof error.statusCode === "number" ? error.statusCode : 500;
    if (statusCode >= 500) {
      request.log.error({ err: error }, "request failed");
      return reply.code(500).send({ error: { code: "INTERNAL_ERROR", message: "The server failed; its log says why." } });
    }
    // Fastify's own refusals: malformed JSON, wrong content type, body too large.
    return reply.code(statusCode).send({ error: { code: error.code ?? "BAD_REQUEST", message: error.message } });
  });
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: { code: "NOT_FOUND", message: `No route ${request.method} ${request.url}.` } });
  });
}
