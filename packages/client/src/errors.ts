import { ERROR_CODES, type ErrorCode, type ErrorPayload } from "@truss/protocol";

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
  /** The outbox store could not keep or update a write (storage full or disabled); a write it could not keep was not queued. */
  "STORAGE_FAILED",
] as const;

/** One of {@link CLIENT_ERROR_CODES}. */
export type ClientOnlyErrorCode = (typeof CLIENT_ERROR_CODES)[number];

/** Every code a {@link TrussClientError} can carry: the server's and the client's own. */
export type ClientErrorCode = ErrorCode | ClientOnlyErrorCode;

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
