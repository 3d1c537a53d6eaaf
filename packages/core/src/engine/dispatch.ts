import { isTrussError, TrussError, type ErrorPayload } from "../errors.js";
import { PROTOCOL_EVENTS } from "../protocol.js";
import type { Connection } from "./connection.js";
import type { EngineContext } from "./context.js";

/** A handler of one client event: resolves with the ack body, or throws a TrussError. */
export type EventHandler = (connection: Connection, payload: unknown) => Promise<object | void>;

type Ack = (response: unknown) => void;

/** Per-socket checks that run before any handler. */
export interface DispatchLimits {
  maxPayloadBytes: number;
}

/**
 * Routes every client event of a socket: size limit, rate limit, known event,
 * then the handler, with its result or coded error sent back in the ack.
 * One function per socket replaces a listener per event per socket, which
 * matters at tens of thousands of idle connections.
 */
export function createDispatcher(
  ctx: EngineContext,
  handlers: ReadonlyMap<string, EventHandler>,
  limits: DispatchLimits,
): (connection: Connection, packet: unknown[]) => void {
  return (connection, packet) => {
    const [event, ...args] = packet;
    const ack = typeof args[args.length - 1] === "function" ? (args.pop() as Ack) : undefined;
    const name = typeof event === "string" ? event : String(event);
    ctx.metrics.inc("truss_events_received_total");

    if (connection.lastPacketBytes > limits.maxPayloadBytes) {
      return refuse(ctx, connection, ack, {
        code: "PAYLOAD_TOO_LARGE",
        message: `"${name}" was ${connection.lastPacketBytes} bytes; the limit is ${limits.maxPayloadBytes}.`,
      });
    }
    if (!connection.bucket.take()) {
      const now = Date.now();
      // Without an ack to answer, tell a flooding socket once a second, not once per event.
      if (!ack && now - connection.lastRateNoticeAt < 1000) {
        ctx.metrics.inc("truss_errors_total", { code: "RATE_LIMITED" });
        return;
      }
      connection.lastRateNoticeAt = now;
      return refuse(ctx, connection, ack, {
        code: "RATE_LIMITED",
        message: `Too many events; this connection may send ${connection.bucket.perSecond} a second.`,
      });
    }
    const handler = handlers.get(name);
    if (!handler) {
      return refuse(ctx, connection, ack, { code: "UNKNOWN_EVENT", message: `"${name}" is not an event this server handles.` });
    }
    // A handler that throws synchronously must still answer through the ack.
    new Promise<object | void>((resolve) => resolve(handler(connection, args[0]))).then(
      (body) => ack?.({ ok: true, ...(body ?? {}) }),
      (error: unknown) => refuse(ctx, connection, ack, errorPayload(ctx, name, error)),
    );
  };
}

/** Sends a coded refusal: in the ack when there is one, else as an `error` event. */
export function refuse(ctx: EngineContext, connection: Connection, ack: Ack | undefined, error: ErrorPayload): void {
  ctx.metrics.inc("truss_errors_total", { code: error.code });
  if (ack) ack({ ok: false, error });
  else connection.socket.emit(PROTOCOL_EVENTS.error, error);
}

function errorPayload(ctx: EngineContext, event: string, error: unknown): ErrorPayload {
  if (isTrussError(error)) return error.toJSON();
  ctx.logger.error(`handler for "${event}" failed`, { error: error instanceof Error ? error.stack : String(error) });
  return { code: "INTERNAL_ERROR", message: `"${event}" failed on the server; it has been logged.` };
}

/** Reads a required string field of a client payload. */
export function requireString(payload: unknown, field: string, maxLength = 256): string {
  const value = (payload as Record<string, unknown> | null | undefined)?.[field];
  if (typeof value !== "string" || value.length === 0 || value.length > maxLength) {
    throw new TrussError("INVALID_PAYLOAD", `"${field}" must be a non-empty string of at most ${maxLength} characters.`);
  }
  return value;
}

/** Reads a required non-negative integer field of a client payload. */
export function requireInteger(payload: unknown, field: string, { min = 0, optional = false } = {}): number {
  const value = (payload as Record<string, unknown> | null | undefined)?.[field];
  if (value === undefined && optional) return Number.NaN;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new TrussError("INVALID_PAYLOAD", `"${field}" must be an integer of at least ${min}.`);
  }
  return value;
}

/** Reads a required plain-object field of a client payload. */
export function requireObject(payload: unknown, field: string): Record<string, unknown> {
  const value = (payload as Record<string, unknown> | null | undefined)?.[field];
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TrussError("INVALID_PAYLOAD", `"${field}" must be an object.`);
  }
  return value as Record<string, unknown>;
}
