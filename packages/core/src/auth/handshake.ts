import { secondsSince } from "../kernel/metrics.js";
import { SPAN_KIND, traced } from "../kernel/tracing.js";
import type { IncomingMessage } from "node:http";
import type { Server } from "socket.io";
import type { Authenticator, AuthRequest } from "./authenticator.js";
import type { Principal } from "../kernel/principal.js";
import { isTrussError, TrussError, type ErrorPayload } from "../kernel/errors.js";
import { PROTOCOL_EVENTS, type HandshakeAuth } from "@truss/protocol";
import type { Connection } from "../kernel/connection.js";
import { ExpiryClock } from "./expiry-clock.js";
import type { EngineContext, TrussSocket } from "../kernel/context.js";
import { SHUTTING_DOWN } from "../kernel/failures.js";
import { abortableWithin } from "../kernel/deadlines.js";
import { answersInProcess } from "../kernel/in-process.js";
import { isOriginAllowed, originOf } from "../kernel/limits.js";
import { isId, MAX_ID_LENGTH } from "../kernel/payload.js";
import type { PresenceService } from "../presence/service.js";
import type { Revocations } from "../revocations/service.js";

const MISSING_EXPIRY = "The token has no exp claim; a connection whose token expires needs a token that expires too. Issue tokens with exp.";

/** What the handshake is built from: the engine's resolved options it reads. */
export interface HandshakeOptions {
  authenticator: Authenticator;
  authExpiry: { warnBeforeMs: number; requireExpiry: boolean };
  limits: { allowedOrigins: ReadonlySet<string> | null; maxDevicesPerUser: number; maxSocketsPerDevice: number; authenticateTimeoutMs: number };
}

/**
 * Who may be on a socket, and until when: the Origin allow-list on every
 * request, the credential at the handshake and on `auth:refresh`, the device
 * cap, and the expiry timers of each live connection. Every refusal is coded.
 */
export class Handshake {
  constructor(
    private readonly ctx: EngineContext,
    private readonly options: HandshakeOptions,
    private readonly presence: PresenceService,
    private readonly revocations: Pick<Revocations, "admit" | "refresh">,
    private readonly isClosing: () => boolean,
  ) {}

  /** Connections told `auth:expiring` for their current token. */
  private readonly warned = new WeakSet<Connection>();
  /** Every live connection's next expiry step (the warning, then the end), on one timer. */
  private readonly expiries = new ExpiryClock<Connection>((connection, now) => this.expiryDue(connection, now));

  /**
   * Refuses foreign Origins at the Engine.IO level: the handshake (polling or
   * WebSocket) through `allowRequest`, with a coded body, and every other
   * request (a session's polling requests and upgrades) through a middleware,
   * since Engine.IO asks `allowRequest` about handshakes only.
   *
   * The middleware lets a foreign request through only when Engine.IO itself
   * will treat it as a handshake, which it decides on the query it parsed
   * (`req._query`, set before any middleware runs, its keys and values
   * percent-decoded): `%73id=` names a session as surely as `sid=` does.
   */
  guardOrigins(io: Server): void {
    const allowed = this.options.limits.allowedOrigins;
    type Engine = {
      opts: { allowRequest?: (req: IncomingMessage, fn: (err: string | null | undefined, ok: boolean) => void) => void };
      use?: (middleware: (req: IncomingMessage & { _query?: Record<string, string> }, res: unknown, next: (error?: Error) => void) => void) => void;
    };
    const engine = io.engine as Engine | undefined;
    if (!engine || !allowed) return;
    engine.use?.((request, _response, next) => {
      if (isOriginAllowed(originOf(request), allowed) || isEngineHandshake(request)) return next();
      this.ctx.metrics.inc("truss_auth_failures_total", { code: "ORIGIN_NOT_ALLOWED" });
      next(new Error(originRefusal(originOf(request)).message));
    });
    const previous = engine.opts.allowRequest;
    engine.opts.allowRequest = (request, callback) => {
      const origin = originOf(request);
      if (!isOriginAllowed(origin, allowed)) {
        this.ctx.metrics.inc("truss_auth_failures_total", { code: "ORIGIN_NOT_ALLOWED" });
        return callback(JSON.stringify(originRefusal(origin)), false);
      }
      if (previous) previous(request, callback);
      else callback(null, true);
    };
  }

  /** The namespace middleware: origin, credential, expiry, device cap. Resolves with the principal or rejects with a coded `connect_error`. */
  admit(socket: TrussSocket): Promise<Principal> {
    const start = performance.now();
    return traced(
      "truss.handshake",
      SPAN_KIND.server,
      { "truss.namespace": socket.nsp.name },
      async (span) => {
        let outcome: "accepted" | "refused" = "refused";
        try {
          const principal = await this.check(socket);
          outcome = "accepted";
          span.set("truss.company_id", principal.companyId);
          return principal;
        } finally {
          span.set("truss.outcome", outcome);
          this.ctx.metrics.observe("truss_handshake_duration_seconds", { outcome }, secondsSince(start));
        }
      },
      // A refused handshake carries its code in the connect_error's `data`.
      (error) => (error as { data?: unknown }).data ?? error,
    );
  }

  private async check(socket: TrussSocket): Promise<Principal> {
    if (this.isClosing()) throw connectError(SHUTTING_DOWN);
    if (!isOriginAllowed(originOf(socket.handshake), this.options.limits.allowedOrigins)) {
      this.ctx.metrics.inc("truss_auth_failures_total", { code: "ORIGIN_NOT_ALLOWED" });
      throw connectError(originRefusal(originOf(socket.handshake)));
    }
    try {
      const principal = await this.authenticate(authRequestFrom(socket.handshake));
      if (![principal.companyId, principal.userId, principal.deviceId].every(isId)) {
        throw new TrussError("AUTH_MISSING_CLAIMS", `The token's user, company or device id is empty, longer than ${MAX_ID_LENGTH} characters or not well-formed Unicode.`);
      }
      // A reconnecting client names whom its first connection was: what it kept for them is not the next user's.
      const { principal: belongsTo } = (socket.handshake.auth ?? {}) as HandshakeAuth;
      if (belongsTo !== undefined) assertSamePrincipal(belongsTo, principal, CLIENT_OF_ANOTHER);
      if (principal.expiresAt !== null && principal.expiresAt <= Date.now()) throw new TrussError("AUTH_TOKEN_EXPIRED", expiredPayload(principal.expiresAt).message);
      if (principal.expiresAt === null && this.options.authExpiry.requireExpiry) throw new TrussError("AUTH_MISSING_CLAIMS", MISSING_EXPIRY);
      const { maxDevicesPerUser, maxSocketsPerDevice } = this.options.limits;
      // Both store reads go out together; the revocation still answers first. The device count never rejects.
      const devicesAdmitted = this.presence.admitsDevice(principal, maxDevicesPerUser);
      await this.revocations.admit(principal, socket.handshake.issued);
      if (!this.presence.admitsSocket(principal, maxSocketsPerDevice)) throw new TrussError("TOO_MANY_CONNECTIONS", tooManyConnections(maxSocketsPerDevice).message);
      if (!(await devicesAdmitted)) throw new TrussError("TOO_MANY_DEVICES", tooManyDevices(maxDevicesPerUser).message);
      return principal;
    } catch (error) {
      const payload = isTrussError(error) ? error.toJSON() : { code: "AUTH_INVALID_TOKEN" as const, message: "The token could not be verified." };
      this.ctx.metrics.inc("truss_auth_failures_total", { code: payload.code });
      throw connectError(payload);
    }
  }

  /**
   * The device and socket caps again over this node's sockets, as the socket
   * connects: handshakes that passed {@link admit} together cannot all get
   * in. A socket over a cap is told `TOO_MANY_DEVICES` or
   * `TOO_MANY_CONNECTIONS` and disconnected; returns whether it may stay.
   */
  seat(socket: TrussSocket, principal: Principal): boolean {
    const { maxDevicesPerUser, maxSocketsPerDevice } = this.options.limits;
    const refusal = !this.presence.admitsDeviceLocally(principal, maxDevicesPerUser)
      ? tooManyDevices(maxDevicesPerUser)
      : !this.presence.admitsSocket(principal, maxSocketsPerDevice)
        ? tooManyConnections(maxSocketsPerDevice)
        : null;
    if (refusal === null) return true;
    this.ctx.metrics.inc("truss_auth_failures_total", { code: refusal.code });
    socket.emit(PROTOCOL_EVENTS.error, refusal);
    socket.disconnect(true);
    return false;
  }

  /**
   * Tells the new connection who it is (`auth:session`, before anything
   * else) when its handshake asked (a client's first connection; later ones
   * name their principal instead, so a reconnection costs no extra packet),
   * and arms its expiry.
   */
  open(connection: Connection): void {
    if ((connection.socket.handshake.auth as HandshakeAuth | undefined)?.session === true) {
      const { userId, companyId } = connection.principal;
      connection.socket.emit(PROTOCOL_EVENTS.authSession, { userId, companyId });
    }
    this.startSession(connection);
  }

  /** Forgets the connection's expiry. */
  close(connection: Connection): void {
    this.expiries.cancel(connection);
  }

  /** Stops the expiry clock: a closing engine disconnects every socket itself. */
  stop(): void {
    this.expiries.stop();
  }

  /**
   * Arms the connection's expiry: `auth:expiring` `warnBeforeMs` ahead of it,
   * then a coded `error` and a disconnect at expiry, each at most a second
   * late, never early. Re-arming (after `auth:refresh`) replaces it.
   */
  private startSession(connection: Connection): void {
    this.warned.delete(connection);
    const { expiresAt } = connection.principal;
    if (expiresAt === null) this.expiries.cancel(connection);
    else this.expiries.schedule(connection, expiresAt - this.options.authExpiry.warnBeforeMs);
  }

  /** A connection's deadline came: first the warning, then (at expiry, or at once when the clock ran late) the end. */
  private expiryDue(connection: Connection, now: number): void {
    const { expiresAt } = connection.principal;
    if (expiresAt === null || !connection.socket.connected) return;
    if (!this.warned.has(connection)) {
      this.warned.add(connection);
      connection.socket.emit(PROTOCOL_EVENTS.authExpiring, { expiresAt, expiresInMs: Math.max(0, expiresAt - now) });
    }
    if (now >= expiresAt) this.expire(connection);
    else this.expiries.schedule(connection, expiresAt);
  }

  /** Verifies a fresh token for a live connection and re-arms its expiry. */
  async refresh(connection: Connection, token: string): Promise<{ expiresAt: number | null }> {
    const next = await this.authenticate({ ...authRequestFrom(connection.socket.handshake), token });
    assertSamePrincipal(connection.principal, next, "The refreshed token names another user or company than this connection; open a new connection instead.");
    if (next.expiresAt !== null && next.expiresAt <= Date.now()) throw new TrussError("AUTH_TOKEN_EXPIRED", expiredPayload(next.expiresAt).message);
    if (next.expiresAt === null && (this.options.authExpiry.requireExpiry || connection.principal.expiresAt !== null)) {
      throw new TrussError("AUTH_MISSING_CLAIMS", MISSING_EXPIRY);
    }
    await this.revocations.refresh(connection, next);
    connection.principal = { ...next, deviceId: connection.principal.deviceId };
    connection.socket.data.principal = connection.principal;
    this.startSession(connection);
    this.ctx.metrics.inc("truss_auth_refreshed_total");
    return { expiresAt: next.expiresAt };
  }

  private expire(connection: Connection): void {
    const { expiresAt } = connection.principal;
    if (expiresAt === null || expiresAt > Date.now()) return;
    this.ctx.metrics.inc("truss_auth_expired_total");
    connection.socket.emit(PROTOCOL_EVENTS.error, expiredPayload(expiresAt));
    connection.socket.disconnect(true);
  }

  /**
   * Runs the authenticator within `limits.authenticateTimeoutMs` (unless it is
   * `jwtAuth` reading claims by name, which answers at once), turning anything
   * but a TrussError into AUTH_INVALID_TOKEN.
   */
  private async authenticate(request: AuthRequest): Promise<Principal> {
    return this.principalFrom(await this.askAuthenticator(request));
  }

  private async askAuthenticator(request: AuthRequest): Promise<unknown> {
    const { authenticator } = this.options;
    const timeoutMs = this.options.limits.authenticateTimeoutMs;
    try {
      if (answersInProcess(authenticator)) return await authenticator.authenticate(request);
      return await abortableWithin(
        timeoutMs,
        (signal) =>
          authenticator.authenticate({
            ...request,
            get signal() {
              return signal();
            },
          }),
        () => {
          this.ctx.logger.warn("the authenticator did not answer in time; the handshake was refused", { timeoutMs });
          return new TrussError("INTERNAL_ERROR", `The server could not verify the token within ${timeoutMs} ms; retry shortly.`);
        },
        this.ctx.abandoned,
      );
    } catch (error) {
      if (isTrussError(error)) throw error;
      throw new TrussError("AUTH_INVALID_TOKEN", "The token could not be verified.", { cause: error });
    }
  }

  /**
   * The engine's own frozen copy of what the authenticator answered, so an
   * object the application keeps (a cached session) and changes later
   * cannot move a live connection to another user or company. Times the
   * engine cannot read are the application's bug, logged and refused
   * `INTERNAL_ERROR`, never taken as "no expiry": an absent `expiresAt` is
   * `null`, which `authExpiry.requireExpiry` refuses.
   */
  private principalFrom(answer: unknown): Principal {
    // No principal at all is the token's failure, as it always was.
    if (typeof answer !== "object" || answer === null) throw new TrussError("AUTH_INVALID_TOKEN", "The token could not be verified.");
    const principal = answer as Partial<Principal>;
    const { roles } = principal;
    const expiresAt = epochMsOrNull(principal.expiresAt);
    const issuedAt = epochMsOrNull(principal.issuedAt);
    if (expiresAt === undefined || issuedAt === undefined || !Array.isArray(roles)) {
      this.ctx.logger.error("the authenticator answered a principal the engine cannot read; the handshake was refused", {
        expiresAt: typeof principal.expiresAt,
        issuedAt: typeof principal.issuedAt,
        roles: Array.isArray(roles) ? "array" : typeof roles,
      });
      throw new TrussError(
        "INTERNAL_ERROR",
        "The server's authenticator answered a principal whose expiresAt or issuedAt is not epoch milliseconds or null, or whose roles are not an array.",
      );
    }
    return Object.freeze({ ...(principal as Principal), roles: Object.freeze([...roles]), expiresAt, issuedAt });
  }
}

/** A time in epoch milliseconds, `null` for none (absent too), or `undefined` for a value that is neither. */
function epochMsOrNull(value: unknown): number | null | undefined {
  if (value === null || value === undefined) return null;
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

/**
 * Builds the authenticator's input from a handshake. The token comes from
 * `auth.token` or an `Authorization: Bearer` header, never the query string,
 * which ends up in access logs and proxies.
 */
export function authRequestFrom(handshake: TrussSocket["handshake"]): AuthRequest {
  const auth = (handshake.auth ?? {}) as Record<string, unknown>;
  let token = typeof auth.token === "string" && auth.token.length > 0 ? auth.token : undefined;
  if (token === undefined) {
    const header = handshake.headers.authorization;
    const match = typeof header === "string" ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    token = match?.[1];
  }
  return {
    token,
    deviceId: typeof auth.deviceId === "string" ? auth.deviceId : undefined,
    headers: handshake.headers,
    address: handshake.address,
  };
}

/** A `connect_error` carrying a coded payload in `err.data`, as Socket.IO middleware expects. */
function connectError(payload: ErrorPayload): Error & { data: ErrorPayload } {
  return Object.assign(new Error(payload.message), { data: payload });
}

/** The `error` payload sent right before an expired connection is closed. */
function expiredPayload(expiresAt: number): ErrorPayload {
  return {
    code: "AUTH_TOKEN_EXPIRED",
    message: `The token expired at ${new Date(expiresAt).toISOString()}; reconnect with a new token, or send auth:refresh before expiry.`,
  };
}

/** The refusal of a reconnecting client's token that names another user or company than its first connection. */
const CLIENT_OF_ANOTHER =
  "The token names another user or company than this client's first connection; a client never carries one user's queued writes and subscriptions into another's session. Connect a new client for the user signed in now.";

/**
 * Checks a new principal against the one a session belongs to (the
 * connection's, on a refresh; the client's first connection's, on a
 * reconnection): a token may extend a session, never switch it to another
 * user or company. `current` may come from the client: anything but the same
 * two ids is refused.
 */
function assertSamePrincipal(current: Partial<Pick<Principal, "userId" | "companyId">> | null, next: Principal, message: string): void {
  if (current?.userId !== next.userId || current?.companyId !== next.companyId) throw new TrussError("AUTH_PRINCIPAL_MISMATCH", message);
}

function tooManyDevices(max: number): ErrorPayload {
  return { code: "TOO_MANY_DEVICES", message: `This user already has ${max} devices connected; disconnect one, or raise limits.maxDevicesPerUser.` };
}

/**
 * Whether Engine.IO will handle a request as a new session's handshake (and
 * so ask `allowRequest` about it): its parsed query names no `sid`, exactly
 * the test Engine.IO applies. Without a parsed query, it is not.
 */
function isEngineHandshake(request: { _query?: Record<string, string> }): boolean {
  return request._query !== undefined && !request._query.sid;
}

function tooManyConnections(max: number): ErrorPayload {
  return {
    code: "TOO_MANY_CONNECTIONS",
    message: `This device already has ${max} connections open to this server (one per tab); close one, or raise limits.maxSocketsPerDevice.`,
  };
}

function originRefusal(origin: string | undefined): ErrorPayload {
  return { code: "ORIGIN_NOT_ALLOWED", message: `Origin ${origin ?? "(none)"} may not connect; add it to limits.allowedOrigins.` };
}
