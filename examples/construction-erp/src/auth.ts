/**
 * Logins and tokens, independent of the web framework: password hashes, the
 * HS256 tokens the login route issues, and the authenticator that REST routes
 * and the Truss engine share, so a token that opens a socket opens the API
 * too and nothing else does.
 *
 * @module
 */
import { randomBytes, scryptSync, timingSafeEqual } from "node:crypto";
import { jwtAuth, TrussError, type Authenticator, type JwtAuthOptions, type Principal } from "@truss/core";
import jwt from "jsonwebtoken";
import type { Role } from "./seed.js";

/** The `iss` and `aud` of the ERP's tokens; a token from another app is refused. */
export const TOKEN_ISSUER = "truss-construction-erp";
/** See {@link TOKEN_ISSUER}. */
export const TOKEN_AUDIENCE = "truss-construction-erp";
/** How long a login lasts. */
export const TOKEN_TTL_SEC = 8 * 60 * 60;

/**
 * The secret used when `JWT_SECRET` is not set. It is public (it is in this
 * file), so anyone can forge tokens for a server that runs with it.
 */
export const DEV_JWT_SECRET = "construction-erp-dev-secret-change-me";

/** What a token says about its holder, beyond the principal's ids. */
export interface TokenSubject {
  id: string;
  companyId: string;
  role: Role;
  name: string;
}

/**
 * The signing secret: `JWT_SECRET` when set, otherwise the development
 * default, flagged so the caller can warn about it.
 */
export function resolveJwtSecret(env: NodeJS.ProcessEnv = process.env): { secret: string; isDevDefault: boolean } {
  const fromEnv = env.JWT_SECRET?.trim();
  return fromEnv ? { secret: fromEnv, isDevDefault: false } : { secret: DEV_JWT_SECRET, isDevDefault: true };
}

/** The engine's `auth` option: HS256 only, with the ERP's issuer and audience. */
export function jwtOptions(secret: string): JwtAuthOptions {
  return { secret, algorithms: ["HS256"], issuer: TOKEN_ISSUER, audience: TOKEN_AUDIENCE };
}

/** Signs a login token for `user`. */
export function issueToken(user: TokenSubject, secret: string, ttlSec: number = TOKEN_TTL_SEC): string {
  return jwt.sign({ companyId: user.companyId, roles: [user.role], name: user.name }, secret, {
    algorithm: "HS256",
    subject: user.id,
    issuer: TOKEN_ISSUER,
    audience: TOKEN_AUDIENCE,
    expiresIn: ttlSec,
  });
}

/** The current role of a token's user, or `undefined` once they are no longer a member of the company. */
export type MemberLookup = (companyId: string, userId: string) => { role: Role } | undefined | Promise<{ role: Role } | undefined>;

/**
 * The ERP's authenticator: the token must verify, and its user must still be
 * a member of its company. A token outlives a removal (it is valid until it
 * expires), so this check is what keeps a removed user out of both the API
 * and the socket: `ACCESS_REVOKED`, which `@truss/client` does not retry. The
 * principal carries the user's current role, not the one signed at login.
 */
export function memberAuthenticator(secret: string, members: MemberLookup): Authenticator {
  const tokens = jwtAuth(jwtOptions(secret));
  return {
    async authenticate(request) {
      const principal = await tokens.authenticate(request);
      const member = await members(principal.companyId, principal.userId);
      if (!member) throw new TrussError("ACCESS_REVOKED", "Your account was removed from this company; ask a manager if that is a mistake.");
      return { ...principal, roles: [member.role] };
    },
  };
}

/**
 * Verifies the `Authorization` header of a REST request with the same
 * authenticator the engine uses for sockets. Rejects with a `TrussError`
 * (`AUTH_MISSING_TOKEN`, `AUTH_TOKEN_EXPIRED`, `ACCESS_REVOKED`, …) that says why.
 */
export type RequestVerifier = (authorization: string | undefined, address: string) => Promise<Principal>;

/** Builds the {@link RequestVerifier} for an authenticator, or for the JWT alone given its secret. */
export function createRequestVerifier(secretOrAuthenticator: string | Authenticator): RequestVerifier {
  const authenticator = typeof secretOrAuthenticator === "string" ? jwtAuth(jwtOptions(secretOrAuthenticator)) : secretOrAuthenticator;
  return (authorization, address) => authenticator.authenticate({ token: authorization, deviceId: undefined, headers: {}, address });
}

/**
 * Whether the principal's token says manager. The Express and NestJS examples
 * use it; this app asks `policy.ts`, which reads the role from the database.
 */
export function isManager(principal: Pick<Principal, "roles">): boolean {
  return principal.roles.includes("manager");
}

const SCRYPT_KEY_LENGTH = 32;

/** Hashes a password with scrypt and a random salt, as `scrypt$<salt>$<hash>` (hex). */
export function hashPassword(password: string): string {
  const salt = randomBytes(16);
  return `scrypt$${salt.toString("hex")}$${scryptSync(password, salt, SCRYPT_KEY_LENGTH).toString("hex")}`;
}

/** Checks a password against {@link hashPassword}'s output in constant time. */
export function verifyPassword(password: string, stored: string): boolean {
  const [scheme, saltHex, hashHex] = stored.split("$");
  if (scheme !== "scrypt" || !saltHex || !hashHex) return false;
  const expected = Buffer.from(hashHex, "hex");
  const actual = scryptSync(password, Buffer.from(saltHex, "hex"), expected.length);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
