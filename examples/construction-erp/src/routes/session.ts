import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { issueToken, verifyPassword } from "../auth.js";
import { HttpError, parseInput } from "../http-errors.js";
import type { DemoLogin } from "../seed.js";
import type { RouteContext } from "./context.js";

const loginBody = z.object({ email: z.string().min(3).max(200), password: z.string().min(1).max(200) });

/**
 * `POST /api/login`, the only route without a token, and, for a database
 * seeded with the public demo data, `GET /api/demo-logins` so the login page
 * can offer them. A real deployment has no demo logins and serves no list.
 */
export function registerLoginRoute(app: FastifyInstance, { repos, jwtSecret }: RouteContext, demoLogins: DemoLogin[] | null): void {
  if (demoLogins) app.get("/api/demo-logins", async () => demoLogins);

  app.post("/api/login", async (request) => {
    const { email, password } = parseInput(loginBody, request.body);
    const found = await repos.users.findForLogin(email);
    // The same answer for an unknown email and a wrong password, so logins cannot be enumerated.
    if (!found || !verifyPassword(password, found.passwordHash)) {
      throw new HttpError(401, "INVALID_CREDENTIALS", "Wrong email or password.");
    }
    const { passwordHash: _hash, ...user } = found;
    return { token: issueToken(user, jwtSecret), user, company: await repos.users.company(user.companyId) };
  });
}

/** `GET /api/me`: who is logged in, with their current role. */
export function registerSessionRoutes(api: FastifyInstance, { repos }: RouteContext): void {
  api.get("/me", async (request) => {
    const { userId, companyId } = request.principal;
    return { user: await repos.users.get(companyId, userId), company: await repos.users.company(companyId) };
  });
}
