import { ERROR_CODES } from "@truss/protocol";

const CODES: ReadonlySet<string> = new Set(ERROR_CODES);

/** Whether `code` is one of `ERROR_CODES`. */
export const isErrorCode = (code: unknown): code is string => typeof code === "string" && CODES.has(code);

/** Whether an `{ code, message }` is a coded error payload as the protocol defines it. */
export function isErrorPayload(value: unknown): value is { code: string; message: string } {
  const error = value as { code?: unknown; message?: unknown } | null;
  return typeof error === "object" && error !== null && isErrorCode(error.code) && typeof error.message === "string" && error.message.length > 0;
}

/**
 * The outcome of an ack: `ok` for `{ ok: true, ... }`, the code for a coded
 * refusal, or `null` when the ack breaks the protocol (anything else).
 */
export function ackOutcome(ack: unknown): string | null {
  const value = ack as { ok?: unknown; error?: unknown } | null;
  if (typeof value !== "object" || value === null) return null;
  if (value.ok === true) return "ok";
  if (value.ok === false && isErrorPayload(value.error)) return value.error.code;
  return null;
}

/**
 * Records the process's unhandled rejections and uncaught exceptions while
 * installed: anything one socket's input makes escape would end a production
 * process, so each file asserts this stays empty.
 */
export class CrashWatch {
  readonly escaped: unknown[] = [];
  private readonly onEscape = (reason: unknown) => void this.escaped.push(reason);

  install(): this {
    process.on("unhandledRejection", this.onEscape);
    process.on("uncaughtException", this.onEscape);
    return this;
  }

  uninstall(): void {
    process.off("unhandledRejection", this.onEscape);
    process.off("uncaughtException", this.onEscape);
  }

  /** The escaped errors as short strings, for an assertion message. */
  describe(): string[] {
    return this.escaped.map((reason) => (reason instanceof Error ? `${reason.name}: ${reason.message}` : String(reason)));
  }
}
