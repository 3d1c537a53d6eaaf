import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { isTrussError } from "@truss/core";
import type { Authenticator, AuthRequest, Principal } from "@truss/core";
import type { ErrorCode } from "@truss/protocol";
import type { Factory, SuiteOptions, TestFunction } from "./runner.js";

/**
 * What an authenticator's test factory returns: the authenticator under test,
 * and a way to mint credentials it should accept, so the suite can probe
 * expiry, tampering and claims without knowing the credential format.
 */
export interface AuthenticatorHarness {
  /** The implementation under test. */
  authenticator: Authenticator;
  /**
   * Mints a credential for these claims, as the real issuer would.
   * `expiresInSec` and `notBeforeSec` are relative to now and may be negative
   * (an already-expired credential); they are only passed when the matching
   * capability flag is on. Without `expiresInSec`, use the issuer's usual
   * lifetime.
   */
  issue(
    claims: { userId: string; companyId: string; roles?: string[]; deviceId?: string },
    opts?: { expiresInSec?: number; notBeforeSec?: number },
  ): string | Promise<string>;
}

/** Options for {@link authenticatorSuite}: the optional parts the credential format supports. */
export interface AuthenticatorSuiteOptions extends SuiteOptions<AuthenticatorHarness> {
  /** The credential can carry an expiry (`exp`): expired ones are refused and `expiresAt` is reported. */
  expiry: boolean;
  /** The credential can carry a start of validity (`nbf`): early ones are refused. */
  notBefore: boolean;
}

/**
 * Registers the cases every {@link Authenticator} must pass: it accepts what
 * the issuer minted, reports who and which tenant, and refuses missing,
 * garbled, tampered, expired and not-yet-valid credentials with a
 * `TrussError` whose `AUTH_*` code says which. `factory` is called once per
 * test.
 *
 * @example
 * ```ts
 * import { test } from "vitest";
 * authenticatorSuite(test, () => ({ authenticator: jwtAuth(opts), issue: (c, o) => sign(c, o) }),
 *   { expiry: true, notBefore: true });
 * ```
 */
export function authenticatorSuite(
  test: TestFunction,
  factory: Factory<AuthenticatorHarness>,
  options: AuthenticatorSuiteOptions,
): void {
  const prefix = options.prefix ?? "Authenticator";

  /** Registers one case with a fresh harness, torn down even when the case fails. */
  const define = (name: string, body: (harness: AuthenticatorHarness) => Promise<void>): void => {
    test(`${prefix}: ${name}`, async () => {
      const harness = await factory();
      try {
        await body(harness);
      } finally {
        await options.teardown?.(harness);
      }
    });
  };

  define("accepts an issued credential and reports its user, company and roles", async ({ authenticator, issue }) => {
    const claims = freshClaims();
    const token = await issue({ ...claims, roles: ["site-manager", "approver"] });
    const principal = await authenticator.authenticate(request(token));
    assert.equal(principal.userId, claims.userId);
    assert.equal(principal.companyId, claims.companyId);
    assert.deepEqual([...principal.roles], ["site-manager", "approver"]);
    assertDeviceId(principal);
  });

  define("reports no roles as an empty list", async ({ authenticator, issue }) => {
    const principal = await authenticator.authenticate(request(await issue(freshClaims())));
    assert.ok(Array.isArray(principal.roles), "roles must be an array even when the credential names none");
    assert.equal(principal.roles.length, 0);
  });

  if (options.expiry) {
    define("reports when the credential expires", async ({ authenticator, issue }) => {
      const before = Date.now();
      const principal = await authenticator.authenticate(request(await issue(freshClaims(), { expiresInSec: 600 })));
      assert.equal(typeof principal.expiresAt, "number", "expiresAt must be set for a credential with an expiry");
      // Token expiry is usually whole seconds, so allow a little rounding either way.
      const expiresAt = principal.expiresAt as number;
      assert.ok(expiresAt > Date.now(), `expiresAt ${expiresAt} should be in the future`);
      assert.ok(
        expiresAt >= before + 598_000 && expiresAt <= Date.now() + 602_000,
        `expiresAt should be about 600 s from now, was ${expiresAt - before} ms`,
      );
    });

    define("refuses an expired credential with AUTH_TOKEN_EXPIRED", async ({ authenticator, issue }) => {
      const token = await issue(freshClaims(), { expiresInSec: -120 });
      await assertRefused(authenticator.authenticate(request(token)), "AUTH_TOKEN_EXPIRED");
    });
  }

  if (options.notBefore) {
    define("refuses a credential that is not valid yet with AUTH_TOKEN_NOT_YET_VALID", async ({ authenticator, issue }) => {
      const token = await issue(freshClaims(), { notBeforeSec: 3600, ...(options.expiry ? { expiresInSec: 7200 } : {}) });
      await assertRefused(authenticator.authenticate(request(token)), "AUTH_TOKEN_NOT_YET_VALID");
    });
  }

  define("refuses a missing or empty credential with AUTH_MISSING_TOKEN", async ({ authenticator }) => {
    await assertRefused(authenticator.authenticate(request(undefined)), "AUTH_MISSING_TOKEN");
    await assertRefused(authenticator.authenticate(request("")), "AUTH_MISSING_TOKEN");
  });

  define("rejects the promise instead of throwing synchronously", async ({ authenticator }) => {
    // The engine awaits the result inside a Socket.IO middleware; a synchronous
    // throw there would escape its error handling.
    let pending: Promise<Principal> | undefined;
    assert.doesNotThrow(() => {
      pending = authenticator.authenticate(request(undefined));
    });
    assert.ok(pending !== undefined && typeof pending.then === "function", "authenticate must return a promise");
    await assertRefused(pending, "AUTH_MISSING_TOKEN");
  });

  define("refuses garbage with AUTH_INVALID_TOKEN", async ({ authenticator }) => {
    for (const garbage of ["garbage", "x.y.z", "eyJhbGciOi.eyJzdWIiOi.c2ln", "   .   .   "]) {
      await assertRefused(authenticator.authenticate(request(garbage)), "AUTH_INVALID_TOKEN", `for ${JSON.stringify(garbage)}`);
    }
  });

  define("refuses a credential with a tampered signature with AUTH_INVALID_TOKEN", async ({ authenticator, issue }) => {
    const token = await issue(freshClaims());
    const segments = token.split(".");
    segments[segments.length - 1] = flipMiddleCharacter(segments[segments.length - 1] ?? "");
    await assertRefused(authenticator.authenticate(request(segments.join("."))), "AUTH_INVALID_TOKEN");
  });

  define("refuses a credential with a tampered body with AUTH_INVALID_TOKEN", async ({ authenticator, issue }) => {
    const token = await issue(freshClaims());
    const segments = token.split(".");
    // The claims sit in the middle segment of a JWS; an opaque credential is one segment.
    const index = segments.length >= 3 ? 1 : 0;
    segments[index] = flipMiddleCharacter(segments[index] ?? "");
    await assertRefused(authenticator.authenticate(request(segments.join("."))), "AUTH_INVALID_TOKEN");
  });

  define("uses the device the credential names over the one the client asks for", async ({ authenticator, issue }) => {
    const deviceId = `tablet-${randomUUID()}`;
    const token = await issue({ ...freshClaims(), deviceId });
    const principal = await authenticator.authenticate(request(token, "phone-on-site"));
    assert.equal(principal.deviceId, deviceId);
  });

  define("uses the client's device id when the credential names none", async ({ authenticator, issue }) => {
    const deviceId = `phone-${randomUUID()}`;
    const principal = await authenticator.authenticate(request(await issue(freshClaims()), deviceId));
    assert.equal(principal.deviceId, deviceId);
  });

  define("gives each unnamed connection its own device id", async ({ authenticator, issue }) => {
    // Two connections that both collapsed onto one id would share presence
    // and an inbox cursor, and one going offline would hide the other.
    const token = await issue(freshClaims());
    const first = await authenticator.authenticate(request(token));
    const second = await authenticator.authenticate(request(token));
    assertDeviceId(first);
    assertDeviceId(second);
    assert.notEqual(first.deviceId, second.deviceId);
  });

  define("does not echo a client device id that is not a plain identifier", async ({ authenticator, issue }) => {
    const token = await issue(freshClaims());
    for (const hostile of ["company:other/user:1", `<img src=x onerror=alert(1)>`, "a".repeat(1000), "phone 7"]) {
      const principal = await authenticator.authenticate(request(token, hostile));
      assert.notEqual(principal.deviceId, hostile, `device id ${JSON.stringify(hostile.slice(0, 40))} must not be used as is`);
      assertDeviceId(principal);
    }
  });
}

/** Random ids, so a case never passes because of state another case left behind. */
function freshClaims(): { userId: string; companyId: string } {
  return { userId: `user-${randomUUID()}`, companyId: `company-${randomUUID()}` };
}

/** An {@link AuthRequest} as the engine builds it from a handshake. */
function request(token: string | undefined, deviceId?: string): AuthRequest {
  return { token, deviceId, headers: {}, address: "203.0.113.7" };
}

/** A device id the engine can use in keys: a non-empty string of reasonable length. */
function assertDeviceId(principal: Principal): void {
  assert.equal(typeof principal.deviceId, "string", "deviceId must be a string");
  assert.ok(principal.deviceId.length > 0 && principal.deviceId.length <= 256, `unusable deviceId ${JSON.stringify(principal.deviceId)}`);
}

/**
 * Changes one character in the middle of `text`. Not the last one: in
 * base64url the final character can carry padding bits, so changing it may
 * decode to the very same signature bytes and prove nothing.
 */
function flipMiddleCharacter(text: string): string {
  assert.ok(text.length > 0, "the issued credential has an empty segment to tamper with");
  const index = Math.floor(text.length / 2);
  const replacement = text[index] === "A" ? "B" : "A";
  return text.slice(0, index) + replacement + text.slice(index + 1);
}

/** Asserts `pending` rejects with a `TrussError` carrying `code` (an `AUTH_*` code) and a message. */
async function assertRefused(pending: Promise<Principal>, code: ErrorCode, context = ""): Promise<void> {
  const where = context === "" ? "" : ` ${context}`;
  let principal: Principal;
  try {
    principal = await pending;
  } catch (error) {
    assert.ok(isTrussError(error), `expected a TrussError${where}, got ${String(error)}`);
    assert.ok(error.code.startsWith("AUTH_"), `expected an AUTH_* code${where}, got ${error.code}`);
    assert.equal(error.code, code, `wrong code${where}: ${error.message}`);
    assert.ok(error.message.length > 0, `the refusal${where} must say why`);
    return;
  }
  assert.fail(`expected ${code}${where}, but the credential was accepted for user ${principal.userId}`);
}
