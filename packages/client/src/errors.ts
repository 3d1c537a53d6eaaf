import { ERROR_ACTIONS, ERROR_CODES, isRetryable, type ErrorAction, type ErrorCode, type ErrorPayload } from "@truss/protocol";

/**
 * Codes the client itself produces, next to the server's {@link ERROR_CODES}.
 * They describe what happened on this side of the wire, where the server
 * could not say anything.
 */
export const CLIENT_ERROR_CODES = [
  /** A connection attempt failed without a server answer: offline, DNS, TLS, proxy, server down. */
  "CONNECTION_FAILED",
  /** The connection dropped before the server answered; the request may or may not have been applied. */
  "DISCONNECTED",
  /** The server did not answer within `ackTimeoutMs`; the request may or may not have been applied. */
  "TIMEOUT",
  /** `client.close()` was called, or the client stopped for good; nothing more is sent. */
  "CLIENT_CLOSED",
  /** `getToken` threw or returned something that is not a non-empty string. */
  "TOKEN_UNAVAILABLE",
  /** The server ended the session without giving a reason code; the client does not reconnect. */
  "SERVER_DISCONNECTED",
  /** `unsubscribe` or `documents.unwatch` withdrew a subscription whose `subscribe` or `watch` was still waiting to be sent. */
  "CANCELLED",
  /** `client.outbox.discard()` removed the pending write; if it was being sent, the server may still have committed it. */
  "DISCARDED",
  /**
   * This device's own storage failed (full, disabled, or a store that threw):
   * the outbox store could not keep a write (it was not queued) or update
   * one, or the position or dedup store could not read or write (after a
   * reconnection or reload a message may be handed to the app twice, or
   * missed). The server's store being down is `STORE_UNAVAILABLE`.
   */
  "STORAGE_FAILED",
] as const;

/** One of {@link CLIENT_ERROR_CODES}. */
export type ClientOnlyErrorCode = (typeof CLIENT_ERROR_CODES)[number];

/** Every code a {@link TrussClientError} can carry: the server's and the client's own. */
export type ClientErrorCode = ErrorCode | ClientOnlyErrorCode;

/**
 * What the client does about each of its own codes, in the words of the
 * server's `ERROR_ACTIONS`: a lost connection or a lost answer is retried, a
 * closed client has stopped, and a request withdrawn on this side is final.
 */
export const CLIENT_ERROR_ACTIONS = {
  CONNECTION_FAILED: "retry",
  DISCONNECTED: "retry",
  TIMEOUT: "retry",
  CLIENT_CLOSED: "stop",
  // A token provider that failed once (its network, its auth server) may answer the next time.
  TOKEN_UNAVAILABLE: "retry",
  SERVER_DISCONNECTED: "stop",
  CANCELLED: "reject",
  DISCARDED: "reject",
  STORAGE_FAILED: "reject",
} as const satisfies Record<ClientOnlyErrorCode, ErrorAction>;

const ACTIONS: Readonly<Record<ClientErrorCode, ErrorAction>> = { ...ERROR_ACTIONS, ...CLIENT_ERROR_ACTIONS };

/**
 * What the client, and an app, does about `code`, for the request whose
 * answer carried it: the server's `ERROR_ACTIONS` and the client's
 * {@link CLIENT_ERROR_ACTIONS}. Every part of the client decides by this.
 */
export function errorAction(code: ClientErrorCode): ErrorAction {
  // A code from outside both lists can only come from code that built its own error: nothing says it would pass.
  return ACTIONS[code] ?? "reject";
}

/**
 * The default of `outbox.maxRefusedAttempts`, and how many times in a row a
 * subscribe or watch may fail on the server (`SUSPECT_RETRY_CODES`) before it
 * is taken as refused: the server may fail on that request every time.
 */
export const DEFAULT_MAX_REFUSED_ATTEMPTS = 5;

/** Whether a request refused with `code` may be accepted when sent again unchanged: its {@link errorAction} is `retry` or `renew-token`. */
export function isRetryableCode(code: ClientErrorCode): boolean {
  return isRetryable(errorAction(code));
}

/**
 * An error with a code, as the client reports it: a rejected request, a
 * refused handshake, an `error` event from the server or a failure on this
 * side. Branch on `code`; `message` is for people.
 */
export class TrussClientError extends Error {
  override readonly name = "TrussClientError";

  /**
   * @param code - the machine-readable reason.
   * @param message - a sentence that says what happened and what to do.
   * @param options - `cause` for the underlying error.
   */
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The wire shape `{ code, message }`, e.g. for logging. */
  toJSON(): { code: ClientErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/**
 * The `STORAGE_FAILED` error of a store on this device that failed to read
 * or write: "The `store` store failed to `operation` (why); `consequence`".
 */
export function storageFailed(store: "dedup" | "position", operation: "read" | "write", error: unknown, consequence: string): TrussClientError {
  const message = error instanceof Error ? error.message : String(error);
  return new TrussClientError("STORAGE_FAILED", `The ${store} store failed to ${operation} (${message}); ${consequence}`, { cause: error });
}

/** Whether `value` is a {@link TrussClientError} (also across duplicated module copies). */
export function isTrussClientError(value: unknown): value is TrussClientError {
  return value instanceof TrussClientError || (value instanceof Error && value.name === "TrussClientError" && typeof (value as { code?: unknown }).code === "string");
}

/** Whether `code` is one the server sends (as opposed to one the client made up). */
export function isServerErrorCode(code: unknown): code is ErrorCode {
  return (ERROR_CODES as readonly unknown[]).includes(code);
}

/** Turns a wire `{ code, message }` into an error, keeping unknown codes readable. */
export function fromPayload(payload: ErrorPayload | undefined, fallback: string): TrussClientError {
  if (payload && isServerErrorCode(payload.code)) return new TrussClientError(payload.code, String(payload.message ?? fallback));
  return new TrussClientError("INTERNAL_ERROR", payload?.message ? String(payload.message) : fallback);
}
