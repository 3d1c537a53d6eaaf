import { createPublicKey, createSecretKey, randomUUID, type KeyObject } from "node:crypto";
import jwt, { type Algorithm, type VerifyOptions } from "jsonwebtoken";
import { isTrussError, TrussError } from "../kernel/errors.js";
import { isThenable } from "../kernel/contract.js";
import { markInProcess } from "../kernel/in-process.js";
import type { Authenticator, AuthRequest } from "./authenticator.js";
import type { Principal } from "../kernel/principal.js";

/** The algorithms verified with a shared secret. */
const SYMMETRIC_ALGORITHMS: readonly JwtAlgorithm[] = ["HS256", "HS384", "HS512"];

/** The algorithms verified with a public key (RSA, RSA-PSS, ECDSA). */
const ASYMMETRIC_ALGORITHMS: readonly JwtAlgorithm[] = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
];

/** One signing algorithm `jwtAuth` can verify; `none` is deliberately absent. */
export type JwtAlgorithm =
  | "HS256" | "HS384" | "HS512"
  | "RS256" | "RS384" | "RS512"
  | "PS256" | "PS384" | "PS512"
  | "ES256" | "ES384" | "ES512";

/**
 * A device id the client may choose for itself: short, and free of anything
 * that could smuggle a separator or markup into room names, keys or logs.
 */
const CLIENT_DEVICE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Which claim carries each {@link Principal} field. Any field left out keeps
 * its default claim.
 */
export interface JwtClaimNames {
  /** The claim holding the user id. Default `sub`. */
  userId?: string;
  /** The claim holding the tenant id. Default `companyId`. */
  companyId?: string;
  /** The claim holding the roles (an array of strings, or one space-separated string). Default `roles`. */
  roles?: string;
  /** The claim naming the device, when the issuer binds tokens to devices. Default `deviceId`. */
  deviceId?: string;
}

/**
 * A verified token's payload: the registered claims typed, any other claim
 * as the issuer wrote it. Declared here rather than taken from
 * `jsonwebtoken`'s types, so an app's type check needs nothing beyond
 * `@truss/core` itself.
 */
export interface JwtClaims {
  [claim: string]: unknown;
  /** Issuer. */
  iss?: string;
  /** Subject: by default, the user id. */
  sub?: string;
  /** Audience. */
  aud?: string | string[];
  /** Expiry, seconds since the epoch. */
  exp?: number;
  /** Not before, seconds since the epoch. */
  nbf?: number;
  /** Issued at, seconds since the epoch. */
  iat?: number;
  /** Token id. */
  jti?: string;
}

/**
 * Builds the principal's fields from a verified payload, for issuers whose
 * tokens need more than renaming (nested claims, prefixed ids), or whose
 * roles live in your database: it may answer a promise. A mapper that
 * throws or rejects refuses the handshake with `AUTH_MISSING_CLAIMS`, or
 * with the code of a `TrussError` it throws (`STORE_UNAVAILABLE` for a
 * lookup that could not be made, which the client retries). `expiresAt`
 * and `issuedAt` are not yours to set: they always come from `exp` and
 * `iat`, so a mapping can never keep a connection alive past its token, nor
 * date a token after a revocation.
 */
export type JwtClaimMapper = (
  payload: JwtClaims,
  /** The handshake's request; its `signal` is aborted when the mapper has not answered within `limits.authenticateTimeoutMs`. */
  request: AuthRequest,
) => Partial<Omit<Principal, "expiresAt" | "issuedAt">> | PromiseLike<Partial<Omit<Principal, "expiresAt" | "issuedAt">>>;

/** What a {@link JwtClaimMapper} answers: the principal's fields it could read. */
type MappedClaims = Partial<Omit<Principal, "expiresAt" | "issuedAt">>;

/** Options for {@link jwtAuth}. Give exactly one of `secret` and `publicKey`. */
export interface JwtAuthOptions {
  /** The shared secret for `HS*` tokens. */
  secret?: string | Buffer;
  /** The issuer's public key (PEM, DER buffer or `KeyObject`) for `RS*`, `PS*` and `ES*` tokens. */
  publicKey?: string | Buffer | KeyObject;
  /**
   * The algorithms a token may be signed with. Required: letting the token's
   * own header choose is how algorithm-confusion attacks work. `none` is
   * refused, and the list must match the key (`HS*` with `secret`, the others
   * with `publicKey`).
   */
  algorithms: readonly JwtAlgorithm[];
  /** The accepted `iss` value(s); unchecked when omitted. */
  issuer?: string | readonly string[];
  /** The accepted `aud` value(s); unchecked when omitted. */
  audience?: string | RegExp | readonly (string | RegExp)[];
  /**
   * Seconds of leeway on `exp` and `nbf` for clock skew between the issuer
   * and this server. Default 0: both are usually NTP-synced servers, and every
   * second of leeway is a second a revoked-by-expiry token still works.
   */
  clockToleranceSec?: number;
  /** Where the principal's fields come from: claim names, or a function of the payload. */
  claims?: JwtClaimNames | JwtClaimMapper;
}

/** The claim names used when {@link JwtAuthOptions.claims} leaves one out. */
const DEFAULT_CLAIMS: Required<JwtClaimNames> = {
  userId: "sub",
  companyId: "companyId",
  roles: "roles",
  deviceId: "deviceId",
};

/**
 * An {@link Authenticator} for JSON Web Tokens (HS*, RS*, PS*, ES*), on
 * `jsonwebtoken`. Every misconfiguration that would weaken verification (no
 * algorithm list, `none`, a key that does not fit the algorithms) throws a
 * `TypeError` here, at startup, rather than letting forged tokens through
 * later.
 *
 * The principal's device is the token's `deviceId` claim when the issuer sets
 * one; otherwise the client's own `deviceId` if it is a plain identifier
 * (`[A-Za-z0-9._:-]`, at most 128 characters); otherwise a fresh random id,
 * so an unnamed connection never shares presence with another device.
 *
 * @example
 * ```ts
 * jwtAuth({ secret: process.env.JWT_SECRET!, algorithms: ["HS256"], issuer: "erp.example.com" });
 * ```
 */
export function jwtAuth(options: JwtAuthOptions): Authenticator {
  const algorithms = checkAlgorithms(options);
  const key = checkKey(options, algorithms);
  const clockTolerance = checkClockTolerance(options.clockToleranceSec);
  const readClaims = claimReader(options.claims);
  const verifyOptions: VerifyOptions = {
    algorithms: [...algorithms] as Algorithm[],
    clockTolerance,
    ...(options.issuer === undefined
      ? {}
      : { issuer: (typeof options.issuer === "string" ? options.issuer : [...options.issuer]) as VerifyOptions["issuer"] }),
    ...(options.audience === undefined
      ? {}
      : {
          audience: (Array.isArray(options.audience) ? [...options.audience] : options.audience) as VerifyOptions["audience"],
        }),
  };

  const authenticator: Authenticator = {
    async authenticate(request: AuthRequest): Promise<Principal> {
      const token = bearerToken(request.token);
      let payload: JwtClaims;
      try {
        payload = verify(token, key, verifyOptions);
      } catch (error) {
        // Only a refused token pays for decoding its header, to say exactly what is wrong with it.
        checkHeader(token, algorithms);
        throw error;
      }
      const mapped = mapClaims(readClaims, payload, request);
      return mapped instanceof Promise ? mapped.then((fields) => principalOf(payload, fields, request.deviceId)) : principalOf(payload, mapped, request.deviceId);
    },
  };
  // Verifying and reading claims by name answer at once; a claims function may wait on the application's database.
  return typeof options.claims === "function" ? authenticator : markInProcess(authenticator);
}

/** Validates `algorithms`: present, non-empty, known, never `none`. */
function checkAlgorithms(options: JwtAuthOptions): readonly JwtAlgorithm[] {
  const { algorithms } = options;
  if (!Array.isArray(algorithms) || algorithms.length === 0) {
    throw new TypeError(
      'jwtAuth: `algorithms` is required, e.g. algorithms: ["HS256"] with a secret or ["RS256"] with a public key. ' +
        "Truss does not let the token's header pick its own algorithm.",
    );
  }
  for (const algorithm of algorithms as readonly string[]) {
    if (typeof algorithm === "string" && algorithm.toLowerCase() === "none") {
      throw new TypeError(
        'jwtAuth: "none" is not allowed in `algorithms`: it accepts unsigned tokens that anyone can forge.',
      );
    }
    if (!isKnownAlgorithm(algorithm)) {
      throw new TypeError(
        `jwtAuth: unknown algorithm ${JSON.stringify(algorithm)} in \`algorithms\`; use one of ` +
          `${[...SYMMETRIC_ALGORITHMS, ...ASYMMETRIC_ALGORITHMS].join(", ")}.`,
      );
    }
  }
  return [...algorithms];
}

/** Whether `value` names an algorithm `jwtAuth` can verify. */
function isKnownAlgorithm(value: unknown): value is JwtAlgorithm {
  return (
    (SYMMETRIC_ALGORITHMS as readonly unknown[]).includes(value) ||
    (ASYMMETRIC_ALGORITHMS as readonly unknown[]).includes(value)
  );
}

/**
 * Turns the configured key into a `KeyObject` once, and refuses a key that
 * does not fit the algorithms: a public key next to `HS256` is the classic
 * key-confusion hole, and a malformed PEM would otherwise be silently treated
 * as an HMAC secret by `jsonwebtoken`.
 */
function checkKey(options: JwtAuthOptions, algorithms: readonly JwtAlgorithm[]): KeyObject {
  const hasSecret = options.secret !== undefined && options.secret !== null;
  const hasPublicKey = options.publicKey !== undefined && options.publicKey !== null;
  if (hasSecret === hasPublicKey) {
    throw new TypeError(
      "jwtAuth: give exactly one of `secret` (for HS256/384/512) and `publicKey` (for RS*, PS*, ES*); " +
        (hasSecret ? "both were given." : "neither was given."),
    );
  }
  const symmetric = algorithms.filter((a) => (SYMMETRIC_ALGORITHMS as readonly string[]).includes(a));
  const asymmetric = algorithms.filter((a) => (ASYMMETRIC_ALGORITHMS as readonly string[]).includes(a));

  if (hasSecret) {
    if (asymmetric.length > 0) {
      throw new TypeError(
        `jwtAuth: ${asymmetric.join(", ")} need a \`publicKey\`, not a \`secret\`; ` +
          "use HS256/HS384/HS512 with a shared secret.",
      );
    }
    const secret = options.secret as string | Buffer;
    if (secret.length === 0) {
      throw new TypeError("jwtAuth: `secret` is empty; every token would be forgeable. Set it to the issuer's signing secret.");
    }
    return createSecretKey(typeof secret === "string" ? Buffer.from(secret, "utf8") : secret);
  }

  if (symmetric.length > 0) {
    throw new TypeError(
      `jwtAuth: ${symmetric.join(", ")} need a \`secret\`, not a \`publicKey\`; ` +
        "with a public key, anyone who has it could sign tokens. Use RS*, PS* or ES* algorithms.",
    );
  }
  const publicKey = options.publicKey as string | Buffer | KeyObject;
  if (typeof publicKey === "object" && "type" in publicKey && !Buffer.isBuffer(publicKey)) {
    if (publicKey.type !== "public") {
      throw new TypeError(`jwtAuth: \`publicKey\` is a ${publicKey.type} key; pass the issuer's public key.`);
    }
    return publicKey;
  }
  try {
    return createPublicKey(publicKey);
  } catch (cause) {
    throw new TypeError(
      "jwtAuth: `publicKey` could not be read as a public key; pass a PEM (-----BEGIN PUBLIC KEY-----) or a KeyObject.",
      { cause },
    );
  }
}

/** Validates the leeway: a non-negative, finite number of seconds. */
function checkClockTolerance(seconds: number | undefined): number {
  if (seconds === undefined) return 0;
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) {
    throw new TypeError(`jwtAuth: \`clockToleranceSec\` must be a non-negative number of seconds, got ${String(seconds)}.`);
  }
  return seconds;
}

/** The raw token, with a stray `Bearer ` prefix (a common client mistake) removed. */
function bearerToken(token: string | undefined): string {
  const trimmed = typeof token === "string" ? token.trim().replace(/^bearer(?:\s+|$)/i, "") : "";
  if (trimmed === "") {
    throw new TrussError(
      "AUTH_MISSING_TOKEN",
      "No token was sent; connect with auth: { token } (or an Authorization: Bearer header).",
    );
  }
  return trimmed;
}

/**
 * Classifies the token by its header before verifying, because
 * `jsonwebtoken` reports an unsigned token, a header without `alg` and a
 * disallowed algorithm alike as `invalid algorithm`, and they mean different
 * things to the person reading the error.
 */
function checkHeader(token: string, algorithms: readonly JwtAlgorithm[]): void {
  const parts = token.split(".");
  let decoded: ReturnType<typeof jwt.decode> = null;
  try {
    decoded = parts.length === 3 ? jwt.decode(token, { complete: true }) : null;
  } catch {
    decoded = null;
  }
  if (decoded === null || typeof decoded !== "object" || typeof decoded.header !== "object" || decoded.header === null) {
    throw invalidToken("it is not a JSON Web Token (expected three base64url parts: header.payload.signature)");
  }
  const alg: unknown = decoded.header.alg;
  if (typeof alg !== "string" || alg.toLowerCase() === "none" || parts[2] === "") {
    throw invalidToken("it is unsigned");
  }
  if (!isKnownAlgorithm(alg)) {
    throw invalidToken(`its header names an unknown algorithm (${JSON.stringify(alg)})`);
  }
  if (!algorithms.includes(alg)) {
    throw new TrussError(
      "AUTH_WRONG_ALGORITHM",
      `The token is signed with ${alg}, but this server accepts only ${algorithms.join(", ")}; ` +
        "get a token from the configured issuer.",
    );
  }
}

/** Verifies signature and registered claims, translating `jsonwebtoken`'s errors into Truss codes. */
function verify(token: string, key: KeyObject, options: VerifyOptions): JwtClaims {
  let payload: unknown;
  try {
    payload = jwt.verify(token, key, options);
  } catch (error) {
    throw translateError(error);
  }
  if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
    throw invalidToken("its payload is not a JSON object of claims");
  }
  return payload as JwtClaims;
}

/**
 * Maps a `jsonwebtoken` failure to a {@link TrussError}. The library tells
 * its cases apart only by class and message text (checked against
 * jsonwebtoken 9's `verify.js`); anything unrecognised, including the
 * `SyntaxError` a corrupt payload throws, is an invalid token.
 */
function translateError(error: unknown): TrussError {
  if (error instanceof jwt.TokenExpiredError) {
    const at = error.expiredAt instanceof Date ? error.expiredAt.toISOString() : "an earlier time";
    return new TrussError(
      "AUTH_TOKEN_EXPIRED",
      `The token expired at ${at}; send auth:refresh with a new token, or reconnect with one.`,
      { cause: error },
    );
  }
  if (error instanceof jwt.NotBeforeError) {
    const at = error.date instanceof Date ? error.date.toISOString() : "a later time";
    return new TrussError(
      "AUTH_TOKEN_NOT_YET_VALID",
      `The token is not valid before ${at}; check that the issuer's and this server's clocks agree, or retry after that time.`,
      { cause: error },
    );
  }
  const message = error instanceof Error ? error.message : "";
  if (error instanceof jwt.JsonWebTokenError) {
    if (message.startsWith("jwt issuer invalid")) {
      return new TrussError(
        "AUTH_WRONG_ISSUER",
        "The token comes from an issuer this server does not trust; get a token from the configured issuer.",
        { cause: error },
      );
    }
    if (message.startsWith("jwt audience invalid")) {
      return new TrussError(
        "AUTH_WRONG_AUDIENCE",
        "The token is meant for another audience than this server; request a token for this API.",
        { cause: error },
      );
    }
    if (message === "invalid algorithm") {
      return new TrussError("AUTH_WRONG_ALGORITHM", "The token is signed with an algorithm this server does not accept.", {
        cause: error,
      });
    }
    if (message === "invalid signature") {
      return invalidToken("its signature does not match", error);
    }
    if (message === "jwt signature is required") {
      return invalidToken("it is unsigned", error);
    }
  }
  return invalidToken("it could not be verified", error);
}

/** An `AUTH_INVALID_TOKEN` error whose message says why and what to do. */
function invalidToken(reason: string, cause?: unknown): TrussError {
  return new TrussError("AUTH_INVALID_TOKEN", `The token was rejected because ${reason}; sign in again to get a valid token.`, {
    cause,
  });
}

/** Builds the function that reads principal fields from a verified payload. */
function claimReader(claims: JwtAuthOptions["claims"]): JwtClaimMapper {
  if (typeof claims === "function") return claims;
  if (claims !== undefined && (claims === null || typeof claims !== "object")) {
    throw new TypeError("jwtAuth: `claims` must be an object of claim names or a function of the payload.");
  }
  const names = { ...DEFAULT_CLAIMS, ...definedOnly(claims ?? {}) };
  return (payload) => ({
    userId: payload[names.userId] as string,
    companyId: payload[names.companyId] as string,
    roles: toRoles(payload[names.roles]),
    deviceId: payload[names.deviceId] as string,
  });
}

/** Drops keys set to `undefined`, so `{ userId: undefined }` keeps the default claim. */
function definedOnly(names: JwtClaimNames): JwtClaimNames {
  return Object.fromEntries(Object.entries(names).filter(([, value]) => value !== undefined));
}

/** Roles from an array of strings, or an OAuth-style space-separated string. */
function toRoles(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((role): role is string => typeof role === "string");
  if (typeof value === "string") return value.split(/\s+/).filter((role) => role !== "");
  return [];
}

/** Accepts a non-empty string, or a finite number (numeric ids are common in tokens) as its decimal string. */
function toId(value: unknown): string | null {
  if (typeof value === "string" && value !== "") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return null;
}

/**
 * The mapper's answer, a promise only when the mapper gave one (the built-in
 * mapper's stays synchronous). What it throws or rejects with refuses the
 * handshake ({@link claimsRefused}); a rejection is handled here, so an async
 * mapper that fails never leaves one unhandled.
 */
function mapClaims(readClaims: JwtClaimMapper, payload: JwtClaims, request: AuthRequest): MappedClaims | Promise<MappedClaims> {
  try {
    const mapped = readClaims(payload, request);
    return isThenable(mapped) ? Promise.resolve(mapped).then((value) => value ?? {}, claimsRefused) : (mapped ?? {});
  } catch (cause) {
    return claimsRefused(cause);
  }
}

/** The principal of a payload and its mapped fields; a field that cannot be read refuses the handshake as a failed mapping does. */
function principalOf(payload: JwtClaims, mapped: MappedClaims, requestedDeviceId: string | undefined): Principal {
  try {
    return toPrincipal(payload, mapped, requestedDeviceId);
  } catch (cause) {
    return claimsRefused(cause);
  }
}

/** A mapping that failed: a `TrussError` keeps its code, anything else is `AUTH_MISSING_CLAIMS`. */
function claimsRefused(cause: unknown): never {
  if (isTrussError(cause)) throw cause;
  throw new TrussError("AUTH_MISSING_CLAIMS", "The token's claims could not be mapped to a user and company.", { cause });
}

/** Assembles the principal, refusing a token that does not say whose and which tenant's it is. */
function toPrincipal(payload: JwtClaims, mapped: MappedClaims, requestedDeviceId: string | undefined): Principal {
  const userId = toId(mapped.userId);
  const companyId = toId(mapped.companyId);
  if (userId === null || companyId === null) {
    const missing = [userId === null ? "user id" : null, companyId === null ? "company id" : null].filter(Boolean);
    throw new TrussError(
      "AUTH_MISSING_CLAIMS",
      `The token is valid but has no ${missing.join(" or ")}; the issuer must include it (or configure jwtAuth's \`claims\` to name the right claim).`,
    );
  }
  const roles = Array.isArray(mapped.roles) ? mapped.roles.filter((role): role is string => typeof role === "string") : [];
  return {
    userId,
    companyId,
    deviceId: chooseDeviceId(toId(mapped.deviceId), requestedDeviceId),
    roles,
    expiresAt: typeof payload.exp === "number" ? payload.exp * 1000 : null,
    issuedAt: typeof payload.iat === "number" && Number.isFinite(payload.iat) ? payload.iat * 1000 : null,
  };
}

/** The token's device wins (the issuer vouches for it); then a well-formed client choice; then a fresh id. */
function chooseDeviceId(fromToken: string | null, requested: string | undefined): string {
  if (fromToken !== null) return fromToken;
  if (typeof requested === "string" && CLIENT_DEVICE_ID.test(requested)) return requested;
  return randomUUID();
}
