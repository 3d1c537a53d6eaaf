import { createSecretKey } from "node:crypto";
import jwt from "jsonwebtoken";

/** The HS256 secret every bench server and the load generator share. */
export const BENCH_SECRET = "truss-bench-secret-not-for-production";

/**
 * The secret as a `KeyObject`. Given a string, jsonwebtoken 9 first tries to
 * parse it as a PEM public key, fails, and only then makes a secret key: on
 * this machine that costs ~0.4 ms per sign or verify, more than the rest of
 * a connection's set-up. Every bench server uses the KeyObject (Truss's
 * `jwtAuth` does the same internally), so none of them pays it.
 */
export const BENCH_KEY = createSecretKey(Buffer.from(BENCH_SECRET));

/**
 * Signs the token a bench client presents: `sub` is the user, `companyId` the
 * tenant, `roles` (only when given) what the servers' authorization reads,
 * valid for an hour, like a typical access token.
 */
export function signToken({ userId, companyId, roles }) {
  return jwt.sign(roles ? { companyId, roles } : { companyId }, BENCH_KEY, { algorithm: "HS256", subject: userId, expiresIn: 3600 });
}
