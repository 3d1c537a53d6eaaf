import jwt from "jsonwebtoken";

/** The HS256 secret every Truss test signs with. */
export const TEST_SECRET = "truss-test-secret-do-not-use-in-production";
/** Issuer and audience the test authenticators expect. */
export const TEST_ISSUER = "truss-tests";
export const TEST_AUDIENCE = "truss-clients";

/** Claims of a test token. */
export interface TestClaims {
  userId: string;
  companyId: string;
  roles?: string[];
  deviceId?: string;
}

/**
 * Signs a valid HS256 token for the test authenticator; `expiresInSec` may be
 * negative (already expired), or `null` for a token without `exp`.
 */
export function signToken(claims: TestClaims, options: { expiresInSec?: number | null; notBeforeSec?: number; secret?: string } = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {
    sub: claims.userId,
    companyId: claims.companyId,
    roles: claims.roles ?? ["member"],
    iat: now,
    iss: TEST_ISSUER,
    aud: TEST_AUDIENCE,
  };
  if (options.expiresInSec !== null) payload.exp = now + (options.expiresInSec ?? 3600);
  if (claims.deviceId) payload.deviceId = claims.deviceId;
  if (options.notBeforeSec !== undefined) payload.nbf = now + options.notBeforeSec;
  // `iat` stays (jsonwebtoken's `noTimestamp` would delete it): revocations compare it.
  return jwt.sign(payload, options.secret ?? TEST_SECRET, { algorithm: "HS256" });
}

/**
 * Waits until a token signed now has an `iat` after `at` (epoch ms), then
 * signs it: `iat` counts whole seconds, so a token signed in the same second
 * as a revocation counts as issued before it.
 */
export async function signTokenAfter(at: number, claims: TestClaims, options: Parameters<typeof signToken>[1] = {}): Promise<string> {
  const nextSecond = (Math.floor(at / 1000) + 1) * 1000;
  // Normally one wait; the check again covers a timer that fires a millisecond early by the wall clock.
  for (let wait = nextSecond - Date.now(); wait > 0; wait = nextSecond - Date.now()) await new Promise((resolve) => setTimeout(resolve, wait));
  return signToken(claims, options);
}
