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

/**
 * Arms the expiry timers of a connection: `auth:expiring` `warnBeforeMs`
 * ahead, then a coded `error` and a disconnect at expiry. Re-arming (after
 * `auth:refresh`) replaces the previous timers.
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
  const warnIn = Math.max(0, untilExpiry - warnBeforeMs);
  connection.warnTimer = setTimeout(() => {
    connection.socket.emit(PROTOCOL_EVENTS.authExpiring, {
      expiresAt,
      expiresInMs: Math.max(0, expiresAt - Date.now()),
    });
  }, warnIn);
  connection.expiryTimer = setTimeout(onExpired, Math.max(0, untilExpiry));
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
