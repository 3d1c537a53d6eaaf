import type { Socket } from "socket.io";
import type { Authenticator, AuthRequest, Principal } from "../auth/authenticator.js";
import { isTrussError, TrussError, type ErrorPayload } from "../errors.js";
import { PROTOCOL_EVENTS } from "../protocol.js";
import type { Connection } from "./connection.js";

/** Node's setTimeout overflows past about 24.8 days; longer expiries are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Builds the authenticator's input from a handshake. The token comes from
 * `auth.token` or an `Authorization: Bearer` header, never the query string,
 * which ends up in access logs and proxies.
 */
export function authRequestFrom(handshake: Socket["handshake"]): AuthRequest {
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

/** Runs the authenticator, turning anything but a TrussError into AUTH_INVALID_TOKEN. */
export async function authenticate(authenticator: Authenticator, request: AuthRequest): Promise<Principal> {
  try {
    return await authenticator.authenticate(request);
  } catch (error) {
    if (isTrussError(error)) throw error;
    throw new TrussError("AUTH_INVALID_TOKEN", "The token could not be verified.", { cause: error });
  }
}

/** A `connect_error` carrying a coded payload in `err.data`, as Socket.IO middleware expects. */
export function connectError(payload: ErrorPayload): Error & { data: ErrorPayload } {
  return Object.assign(new Error(payload.message), { data: payload });
}

/** Timer durations are rounded up to this, so connections share Node's per-duration timer lists. */
const TIMER_GRANULARITY_MS = 1000;

const roundUp = (ms: number): number => Math.ceil(Math.max(0, ms) / TIMER_GRANULARITY_MS) * TIMER_GRANULARITY_MS;

/**
 * Arms the expiry of a connection: `auth:expiring` `warnBeforeMs` ahead, then
 * a coded `error` and a disconnect at expiry. One timer at a time (the
 * expiry timer is armed when the warning fires), its duration rounded up to a
 * whole second: Node keeps one list per distinct duration, and tokens that
 * expire at different milliseconds would otherwise cost every connection two
 * timers and their own lists. The disconnect comes at most a second after
 * expiry, never before it. Re-arming (after `auth:refresh`) replaces the timer.
 */
export function scheduleExpiry(connection: Connection, warnBeforeMs: number, onExpired: () => void): void {
  connection.clearTimers();
  const expiresAt = connection.principal.expiresAt;
  if (expiresAt === null) return;
  const untilExpiry = expiresAt - Date.now();
  if (untilExpiry > MAX_TIMER_MS) {
    connection.expiryTimer = setTimeout(() => scheduleExpiry(connection, warnBeforeMs, onExpired), MAX_TIMER_MS);
    return;
  }
  const armExpiry = () => {
    connection.expiryTimer = setTimeout(() => {
      // A timer may fire a millisecond before Date.now() agrees; never leave the connection unarmed.
      if (Date.now() < expiresAt) armExpiry();
      else onExpired();
    }, roundUp(expiresAt - Date.now()));
  };
  connection.warnTimer = setTimeout(() => {
    connection.warnTimer = undefined;
    connection.socket.emit(PROTOCOL_EVENTS.authExpiring, {
      expiresAt,
      expiresInMs: Math.max(0, expiresAt - Date.now()),
    });
    armExpiry();
  }, roundUp(untilExpiry - warnBeforeMs));
}

/** The `error` payload sent right before an expired connection is closed. */
export function expiredPayload(expiresAt: number): ErrorPayload {
  return {
    code: "AUTH_TOKEN_EXPIRED",
    message: `The token expired at ${new Date(expiresAt).toISOString()}; reconnect with a new token, or send auth:refresh before expiry.`,
  };
}

/**
 * Checks a refreshed principal against the connection's: a refresh may extend
 * a session, never switch it to another user or company.
 */
export function assertSamePrincipal(current: Principal, next: Principal): void {
  if (current.userId !== next.userId || current.companyId !== next.companyId) {
    throw new TrussError(
      "AUTH_PRINCIPAL_MISMATCH",
      "The refreshed token names another user or company than this connection; open a new connection instead.",
    );
  }
}
