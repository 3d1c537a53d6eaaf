import { generateKeyPairSync, randomUUID } from "node:crypto";
import jwt from "jsonwebtoken";
import { describe, expect, test } from "vitest";
import { authenticatorSuite } from "@truss/conformance";
import { isTrussError, jwtAuth, TrussError, type AuthRequest, type JwtAuthOptions, type Principal } from "@truss/core";
import type { ErrorCode } from "@truss/protocol";

const SECRET = "riverside-clinic-signing-secret-0123456789";
const ISSUER = "https://auth.erp.example.com";
const AUDIENCE = "truss-realtime";

/**
 * A token for a site manager at Acme Construction. Overrides set to
 * `undefined` remove the claim or option (jsonwebtoken rejects undefined options).
 */
function sign(payload: Record<string, unknown>, options: jwt.SignOptions = {}, key: jwt.Secret = SECRET): string {
  return jwt.sign(
    withoutUndefined({ sub: "user-17", companyId: "acme-construction", roles: ["site-manager"], ...payload }),
    key,
    withoutUndefined<jwt.SignOptions>({ algorithm: "HS256", expiresIn: 3600, issuer: ISSUER, audience: AUDIENCE, ...options }),
  );
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as T;
}

function request(token: string | undefined, deviceId?: string): AuthRequest {
  return { token, deviceId, headers: {}, address: "203.0.113.7" };
}

const hs256 = (overrides: Partial<JwtAuthOptions> = {}) =>
  jwtAuth({ secret: SECRET, algorithms: ["HS256"], issuer: ISSUER, audience: AUDIENCE, ...overrides });

/** Resolves with the TrussError `pending` rejects with, failing if it resolves or throws anything else. */
async function refusal(pending: Promise<Principal>): Promise<{ code: ErrorCode; message: string }> {
  const error: unknown = await pending.then(
    (principal) => expect.fail(`expected a refusal, got a principal for ${principal.userId}`),
    (reason: unknown) => reason,
  );
  if (!isTrussError(error)) throw new Error(`expected a TrussError, got ${String(error)}`);
  return { code: error.code, message: error.message };
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

authenticatorSuite(
  test,
  () => ({
    authenticator: hs256(),
    issue: ({ userId, companyId, roles, deviceId }, opts = {}) => {
      const now = Math.floor(Date.now() / 1000);
      return jwt.sign(
        {
          sub: userId,
          companyId,
          ...(roles === undefined ? {} : { roles }),
          ...(deviceId === undefined ? {} : { deviceId }),
          exp: now + (opts.expiresInSec ?? 3600),
          ...(opts.notBeforeSec === undefined ? {} : { nbf: now + opts.notBeforeSec }),
        },
        SECRET,
        { algorithm: "HS256", issuer: ISSUER, audience: AUDIENCE },
      );
    },
  }),
  { expiry: true, notBefore: true, prefix: "jwtAuth (HS256)" },
);

describe("jwtAuth: signatures and algorithms", () => {
  test("refuses an unsigned alg:none token as invalid", async () => {
    const unsigned = `${base64url({ alg: "none", typ: "JWT" })}.${base64url({
      sub: "user-17",
      companyId: "acme-construction",
      iss: ISSUER,
      aud: AUDIENCE,
      exp: Math.floor(Date.now() / 1000) + 3600,
    })}.`;
    const { code } = await refusal(hs256().authenticate(request(unsigned)));
    expect(code).toBe("AUTH_INVALID_TOKEN");
  });

  test("refuses a token that claims HS256 but carries no signature as invalid", async () => {
    const [header, payload] = sign({}).split(".");
    const { code } = await refusal(hs256().authenticate(request(`${header}.${payload}.`)));
    expect(code).toBe("AUTH_INVALID_TOKEN");
  });

  test("refuses a token signed with another secret as invalid", async () => {
    const forged = sign({}, {}, "not-the-issuers-secret-at-all-0123456789");
    const { code, message } = await refusal(hs256().authenticate(request(forged)));
    expect(code).toBe("AUTH_INVALID_TOKEN");
    expect(message).toMatch(/signature/);
  });

  test("refuses a token whose payload was rewritten to another company", async () => {
    const [header, payload, signature] = sign({}).split(".");
    const claims = JSON.parse(Buffer.from(payload ?? "", "base64url").toString("utf8")) as Record<string, unknown>;
    const rewritten = `${header}.${base64url({ ...claims, companyId: "rival-builders" })}.${signature}`;
    const { code, message } = await refusal(hs256().authenticate(request(rewritten)));
    expect(code).toBe("AUTH_INVALID_TOKEN");
    expect(message).toMatch(/signature/);
  });

  test("refuses a token signed with an algorithm the server does not accept", async () => {
    const token = sign({}, { algorithm: "HS512" });
    const { code, message } = await refusal(hs256().authenticate(request(token)));
    expect(code).toBe("AUTH_WRONG_ALGORITHM");
    expect(message).toContain("HS512");
    expect(message).toContain("HS256");
  });

  test("accepts RS256 tokens verified with the issuer's public key", async () => {
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const auth = jwtAuth({
      publicKey: publicKey.export({ type: "spki", format: "pem" }),
      algorithms: ["RS256"],
      issuer: ISSUER,
    });
    const token = sign({}, { algorithm: "RS256", audience: undefined }, privateKey);
    const principal = await auth.authenticate(request(token));
    expect(principal).toMatchObject({ userId: "user-17", companyId: "acme-construction", roles: ["site-manager"] });

    // Key confusion: an HS256 token whose "secret" is the public key PEM must not pass.
    const confused = sign({}, { algorithm: "HS256" }, publicKey.export({ type: "spki", format: "pem" }));
    expect((await refusal(auth.authenticate(request(confused)))).code).toBe("AUTH_WRONG_ALGORITHM");
  });
});

describe("jwtAuth: registered claims", () => {
  test("says when an expired token expired and how to recover", async () => {
    const exp = Math.floor(Date.now() / 1000) - 90;
    const token = sign({ exp }, { expiresIn: undefined });
    const { code, message } = await refusal(hs256().authenticate(request(token)));
    expect(code).toBe("AUTH_TOKEN_EXPIRED");
    expect(message).toContain(new Date(exp * 1000).toISOString());
    expect(message).toContain("auth:refresh");
  });

  test("accepts a just-expired token within clockToleranceSec", async () => {
    const exp = Math.floor(Date.now() / 1000) - 10;
    const token = sign({ exp }, { expiresIn: undefined });
    await expect(hs256({ clockToleranceSec: 30 }).authenticate(request(token))).resolves.toMatchObject({
      expiresAt: exp * 1000,
    });
    expect((await refusal(hs256().authenticate(request(token)))).code).toBe("AUTH_TOKEN_EXPIRED");
  });

  test("refuses a token whose nbf is in the future", async () => {
    const token = sign({}, { notBefore: 600 });
    const { code, message } = await refusal(hs256().authenticate(request(token)));
    expect(code).toBe("AUTH_TOKEN_NOT_YET_VALID");
    expect(message).toMatch(/\d{4}-\d{2}-\d{2}T/);
  });

  test("refuses a token from another issuer, or with none", async () => {
    expect((await refusal(hs256().authenticate(request(sign({}, { issuer: "https://evil.example" }))))).code).toBe(
      "AUTH_WRONG_ISSUER",
    );
    expect((await refusal(hs256().authenticate(request(sign({}, { issuer: undefined }))))).code).toBe("AUTH_WRONG_ISSUER");
  });

  test("refuses a token for another audience, and accepts one that lists ours among others", async () => {
    const other = sign({}, { audience: "billing-api" });
    expect((await refusal(hs256().authenticate(request(other)))).code).toBe("AUTH_WRONG_AUDIENCE");
    const several = sign({}, { audience: ["billing-api", AUDIENCE] });
    await expect(hs256().authenticate(request(several))).resolves.toMatchObject({ userId: "user-17" });
  });

  test("reports expiresAt from exp, and null for a token without exp", async () => {
    const exp = Math.floor(Date.now() / 1000) + 900;
    await expect(hs256().authenticate(request(sign({ exp }, { expiresIn: undefined })))).resolves.toMatchObject({
      expiresAt: exp * 1000,
    });
    await expect(hs256().authenticate(request(sign({}, { expiresIn: undefined })))).resolves.toMatchObject({
      expiresAt: null,
    });
  });
});

describe("jwtAuth: principal claims", () => {
  test("refuses a valid token without a company or user", async () => {
    const noCompany = await refusal(hs256().authenticate(request(sign({ companyId: undefined }))));
    expect(noCompany.code).toBe("AUTH_MISSING_CLAIMS");
    expect(noCompany.message).toContain("company");
    const noUser = await refusal(hs256().authenticate(request(sign({ sub: undefined }))));
    expect(noUser.code).toBe("AUTH_MISSING_CLAIMS");
    const emptyCompany = await refusal(hs256().authenticate(request(sign({ companyId: "" }))));
    expect(emptyCompany.code).toBe("AUTH_MISSING_CLAIMS");
  });

  test("refuses a token whose payload is not a JSON object", async () => {
    const token = jwt.sign("just a string", SECRET, { algorithm: "HS256" });
    expect((await refusal(jwtAuth({ secret: SECRET, algorithms: ["HS256"] }).authenticate(request(token)))).code).toBe(
      "AUTH_INVALID_TOKEN",
    );
  });

  test("reads renamed claims, OAuth-style space-separated roles and numeric ids", async () => {
    const auth = hs256({ claims: { userId: "uid", companyId: "tenant", roles: "scope" } });
    const token = sign({ sub: "ignored", uid: "user-99", tenant: 42, scope: "expenses:approve projects:read" });
    await expect(auth.authenticate(request(token))).resolves.toMatchObject({
      userId: "user-99",
      companyId: "42",
      roles: ["expenses:approve", "projects:read"],
    });
  });

  test("maps claims with a function", async () => {
    const auth = hs256({
      claims: (payload) => {
        const org = payload.org as { id: string; role: string };
        return { userId: `erp|${payload.sub}`, companyId: org.id, roles: [org.role] };
      },
    });
    const token = sign({ org: { id: "acme-construction", role: "estimator" } });
    await expect(auth.authenticate(request(token))).resolves.toMatchObject({
      userId: "erp|user-17",
      companyId: "acme-construction",
      roles: ["estimator"],
    });
  });

  test("maps claims with an async function: roles from the application's database; a lookup that fails refuses with its own code or AUTH_MISSING_CLAIMS", async () => {
    const roles = new Map([["user-17", ["site-manager", "project:p-9"]]]);
    let databaseUp = true;
    const auth = hs256({
      claims: async (payload) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        if (!databaseUp) throw new Error("connect ECONNREFUSED 127.0.0.1:5432");
        return { userId: payload.sub, companyId: payload.companyId as string, roles: roles.get(payload.sub!) ?? [] };
      },
    });
    await expect(auth.authenticate(request(sign({})))).resolves.toMatchObject({ userId: "user-17", roles: ["site-manager", "project:p-9"] });
    databaseUp = false;
    expect((await refusal(auth.authenticate(request(sign({}))))).code).toBe("AUTH_MISSING_CLAIMS");
    const retryable = hs256({ claims: async () => Promise.reject(new TrussError("STORE_UNAVAILABLE", "the roles could not be read; retry")) });
    expect(await refusal(retryable.authenticate(request(sign({}))))).toMatchObject({ code: "STORE_UNAVAILABLE", message: "the roles could not be read; retry" });
  });

  test("takes the device from the token, then a well-formed client id, then a fresh one", async () => {
    const auth = hs256();
    expect((await auth.authenticate(request(sign({ deviceId: "tablet-3" }), "phone-1"))).deviceId).toBe("tablet-3");
    expect((await auth.authenticate(request(sign({}), "phone-1:site.B_2"))).deviceId).toBe("phone-1:site.B_2");
    const fresh = await auth.authenticate(request(sign({}), "phone 1/../../x"));
    expect(fresh.deviceId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect((await auth.authenticate(request(sign({}), "x".repeat(129)))).deviceId).not.toBe("x".repeat(129));
  });

  test("tolerates a 'Bearer ' prefix and surrounding whitespace on the token", async () => {
    await expect(hs256().authenticate(request(`  Bearer ${sign({})} `))).resolves.toMatchObject({ userId: "user-17" });
    expect((await refusal(hs256().authenticate(request("Bearer   ")))).code).toBe("AUTH_MISSING_TOKEN");
  });
});

describe("jwtAuth: configuration", () => {
  const publicKeyPem = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" });

  test.each([
    ["no algorithms", { secret: SECRET }, /algorithms.*required/],
    ["an empty algorithms list", { secret: SECRET, algorithms: [] }, /algorithms.*required/],
    ["none among the algorithms", { secret: SECRET, algorithms: ["HS256", "none"] }, /"none" is not allowed/],
    ["NONE in capitals", { secret: SECRET, algorithms: ["NONE"] }, /"none" is not allowed/],
    ["an unknown algorithm", { secret: SECRET, algorithms: ["HS257"] }, /unknown algorithm "HS257"/],
    ["both secret and publicKey", { secret: SECRET, publicKey: publicKeyPem, algorithms: ["HS256"] }, /exactly one.*both/],
    ["neither secret nor publicKey", { algorithms: ["HS256"] }, /exactly one.*neither/],
    ["an empty secret", { secret: "", algorithms: ["HS256"] }, /secret.*empty/],
    ["a secret with RS256", { secret: SECRET, algorithms: ["RS256"] }, /RS256 need a `publicKey`/],
    ["a public key with HS256", { publicKey: publicKeyPem, algorithms: ["HS256"] }, /HS256 need a `secret`/],
    ["a public key that is not one", { publicKey: "-----BEGIN PUBLIC KEY-----\nnope", algorithms: ["ES256"] }, /could not be read/],
    ["a negative clock tolerance", { secret: SECRET, algorithms: ["HS256"], clockToleranceSec: -5 }, /clockToleranceSec/],
  ])("throws a TypeError at construction for %s", (_label, options, message) => {
    expect(() => jwtAuth(options as unknown as JwtAuthOptions)).toThrow(TypeError);
    expect(() => jwtAuth(options as unknown as JwtAuthOptions)).toThrow(message);
  });

  test("accepts ES256 with a public key", async () => {
    const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const auth = jwtAuth({ publicKey, algorithms: ["ES256"] });
    const userId = `user-${randomUUID()}`;
    const token = jwt.sign({ sub: userId, companyId: "acme-construction" }, privateKey, { algorithm: "ES256" });
    await expect(auth.authenticate(request(token))).resolves.toMatchObject({ userId, roles: [], expiresAt: null });
  });
});
