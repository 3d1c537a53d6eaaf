import { ERROR_CODES, type ErrorCode, type ErrorPayload } from "@truss/protocol";

export { ERROR_CODES } from "@truss/protocol";
export type { ErrorCode, ErrorPayload } from "@truss/protocol";

/**
 * An error with a {@link ErrorCode}. Stores, authenticators and handlers throw
 * it to refuse something on purpose; any other thrown value is reported to the
 * client as `INTERNAL_ERROR` (or `HANDLER_ERROR` from an application handler)
 * without leaking its message.
 */
export class TrussError extends Error {
  override readonly name = "TrussError";

  /**
   * @param code - the machine-readable reason.
   * @param message - a sentence that says what happened and what to do.
   * @param options - `cause` for the underlying error, kept for logs only.
   */
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The shape sent to clients. */
  toJSON(): ErrorPayload {
    return { code: this.code, message: this.message };
  }
}

/** Whether `value` is a {@link TrussError} (also across duplicated module copies). */
/**
 * A client's request refused with a code: a {@link TrussError} without a stack
 * trace. Capturing one costs about 6 µs, twenty times the rest of the error,
 * and would only point into the engine, since the refusal is answered to the
 * client rather than thrown at application code. For the refusals a client
 * can provoke at will (a policy's `FORBIDDEN`, a malformed field), so that
 * sending them costs the server little.
 */
export function clientRefusal(code: ErrorCode, message: string): TrussError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new TrussError(code, message);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

export function isTrussError(value: unknown): value is TrussError {
  return (
    value instanceof TrussError ||
    (value instanceof Error &&
      value.name === "TrussError" &&
      (ERROR_CODES as readonly unknown[]).includes((value as unknown as { code?: unknown }).code))
  );
}

/**
 * The message of a thrown value, for a log line: an `Error`'s own, anything
 * else as a string. Never throws, also for a value with no string form
 * (`Object.create(null)`, a `toString` that throws).
 */
export function messageOf(error: unknown): string {
  try {
    return error instanceof Error ? String(error.message) : String(error);
  } catch {
    return `a thrown ${typeof error} with no string form`;
  }
}
