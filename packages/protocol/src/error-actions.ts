import type { ErrorCode } from "./errors.js";

/**
 * What a client does about a refusal, by its code. Said once here, so every
 * client (and every part of `@truss/client`) acts alike on the same code.
 *
 * - `retry`: the server could not take the request now (too many events, a
 *   store down, a restart, a clock a moment behind); nothing is wrong with
 *   it. Send the same request again later, with backoff; a write's mutation
 *   id makes the resend harmless.
 * - `renew-token`: the credential is missing, unreadable or expired; the
 *   request is fine. Get a new token, reconnect, and send the request again.
 * - `resync`: the client's view is older than what the server remembers.
 *   Refetch the state (reload the document), then redo the change if it is
 *   still missing; the same request would be refused again.
 * - `reject`: the server refused this request and would refuse it again (it
 *   is malformed, too large, not allowed, or names what does not exist). Hand
 *   the refusal to the caller; the connection is fine.
 * - `stop`: the application revoked the access (to the session, or to the
 *   topic asked for), or the token or origin does not fit the server's
 *   configuration; no attempt with this credential will do. Stop for good: a
 *   request that got it is final, a session it ended is not reconnected. It
 *   takes a new sign-in or a configuration change.
 */
export type ErrorAction = "retry" | "renew-token" | "resync" | "reject" | "stop";

/**
 * What a client does about each code, for the request whose answer carried
 * it. When the code refused the handshake or ended the session instead, read
 * it through {@link CONNECTION_ACTIONS}: `FORBIDDEN` refuses one topic here,
 * but ends the session when `engine.disconnectUser` sends it.
 */
export const ERROR_ACTIONS = {
  AUTH_MISSING_TOKEN: "renew-token",
  // A new token from the app's provider may be signed with the current key.
  AUTH_INVALID_TOKEN: "renew-token",
  AUTH_WRONG_ALGORITHM: "stop",
  AUTH_TOKEN_EXPIRED: "renew-token",
  // The token turns valid in a moment: the client's or the issuer's clock is behind.
  AUTH_TOKEN_NOT_YET_VALID: "retry",
  AUTH_WRONG_ISSUER: "stop",
  AUTH_WRONG_AUDIENCE: "stop",
  AUTH_MISSING_CLAIMS: "stop",
  AUTH_PRINCIPAL_MISMATCH: "stop",
  ORIGIN_NOT_ALLOWED: "stop",
  PAYLOAD_TOO_LARGE: "reject",
  RATE_LIMITED: "retry",
  DOCUMENT_TOO_LARGE: "reject",
  QUOTA_EXCEEDED: "reject",
  SLOW_CONSUMER: "retry",
  // Another device may sign out, or another tab close, and make room.
  TOO_MANY_DEVICES: "retry",
  TOO_MANY_CONNECTIONS: "retry",
  UNKNOWN_EVENT: "reject",
  INVALID_PAYLOAD: "reject",
  NOT_FOUND: "reject",
  VERSION_NOT_FOUND: "reject",
  MUTATION_EXPIRED: "resync",
  FORBIDDEN: "reject",
  TOO_MANY_SUBSCRIPTIONS: "reject",
  PRESENCE_STATE_TOO_LARGE: "reject",
  TOO_MANY_PRESENCE_SCOPES: "reject",
  ACCESS_REVOKED: "stop",
  STORE_UNAVAILABLE: "retry",
  SERVER_SHUTTING_DOWN: "retry",
  HANDLER_ERROR: "reject",
  // Most often a store or a node failing in a way Truss did not foresee, which passes.
  INTERNAL_ERROR: "retry",
} as const satisfies Record<ErrorCode, ErrorAction>;

/** What a client does about a code once it refused the handshake or ended the session: one of the {@link ErrorAction}s. */
type ConnectionAction = Extract<ErrorAction, "retry" | "renew-token" | "stop">;

/**
 * What each action means for the connection, when its code refused the
 * handshake (`connect_error`) or came in the `error` event right before the
 * server ended the session ({@link SESSION_ENDING_CODES}): reconnect with
 * backoff, reconnect with a new token (a client that cannot get one stops),
 * or stop. A refusal the next attempt would get again stops the client, so
 * it never hammers the server.
 */
export const CONNECTION_ACTIONS = {
  retry: "retry",
  "renew-token": "renew-token",
  resync: "stop",
  reject: "stop",
  stop: "stop",
} as const satisfies Record<ErrorAction, ConnectionAction>;

/**
 * Codes of the `error` event the server sends right before it ends a session
 * on purpose; the disconnect that follows is for that reason, and
 * {@link CONNECTION_ACTIONS} says what comes next. An `error` event with any
 * other code is a notice: the session goes on. `STORE_UNAVAILABLE` is also
 * the notice of a request sent without an ack; it ends the session only when
 * the disconnect follows it.
 */
export const SESSION_ENDING_CODES: readonly ErrorCode[] = [
  "SERVER_SHUTTING_DOWN",
  "AUTH_TOKEN_EXPIRED",
  "SLOW_CONSUMER",
  "TOO_MANY_DEVICES",
  "TOO_MANY_CONNECTIONS",
  "ACCESS_REVOKED",
  "FORBIDDEN",
  // The device's queued inbox messages could not be loaded: reconnecting loads them (see `@truss/core`'s inbox).
  "STORE_UNAVAILABLE",
];

/**
 * Codes whose action is `retry` that may also mean the server fails on this
 * very request every time (a bug it did not foresee, with a store or a value),
 * where the others (a store down, a restart, a rate limit) say it is busy or
 * away and pass. A client that queues writes gives one up after the same
 * such code came back a few times in a row (`@truss/client`:
 * `outbox.maxRefusedAttempts`), so one write cannot hold the writes behind
 * it for good; the others it retries for as long as they last.
 */
export const SUSPECT_RETRY_CODES: readonly ErrorCode[] = ["INTERNAL_ERROR"];

/** What a client does about `code`, for the request whose answer carried it ({@link ERROR_ACTIONS}). */
export function errorAction(code: ErrorCode): ErrorAction {
  return ERROR_ACTIONS[code];
}

/** Whether a request refused with `action` may be accepted when sent again unchanged: later (`retry`), or once the client has a new token (`renew-token`). */
export function isRetryable(action: ErrorAction): boolean {
  return CONNECTION_ACTIONS[action] !== "stop";
}
