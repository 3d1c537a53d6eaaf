import { createRequestVerifier, issueToken, verifyPassword } from "@truss/example-construction-erp/auth";
import type { Repositories } from "@truss/example-construction-erp/data";
import type { Principal } from "@truss/core";
import type { RequestHandler } from "express";

declare global {
  namespace Express {
    interface Request {
      /** Who sent the request, from the verified bearer token. */
      principal: Principal;
    }
  }
}

/** `POST /api/login`: the same logins and tokens as the Fastify demo. */
export function loginHandler(repos: Repositories, jwtSecret: string): RequestHandler {
  return (req, res) => {
    const { email, password } = (req.body ?? {}) as { email?: unknown; password?: unknown };
    const found = typeof email === "string" ? repos.users.findForLogin(email) : undefined;
    if (!found || typeof password !== "string" || !verifyPassword(password, found.passwordHash)) {
      res.status(401).json({ error: { code: "INVALID_CREDENTIALS", message: "Wrong email or password." } });
      return;
    }
    const { passwordHash: _hash, ...user } = found;
    res.json({ token: issueToken(user, jwtSecret), user });
  };
}

/**
 * Requires a valid bearer token, verified with the authenticator the Truss
 * engine uses for sockets, and sets `req.principal`.
 */
export function requireToken(jwtSecret: string): RequestHandler {
  const verify = createRequestVerifier(jwtSecret);
  return (req, res, next) => {
    verify(req.headers.authorization, req.ip ?? "").then(
      (principal) => {
        req.principal = principal;
        next();
      },
      (error: { code?: string; message: string }) => res.status(401).json({ error: { code: error.code ?? "AUTH_INVALID_TOKEN", message: error.message } }),
    );
  };
}
