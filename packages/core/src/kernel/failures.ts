import { isTrussError, messageOf, TrussError, type ErrorPayload } from "./errors.js";
import { secondsSince } from "./metrics.js";
import type { EngineContext } from "./context.js";
import { withinStoreDeadline, type StoreName } from "./deadlines.js";

/**
 * How every failure the engine did not mean becomes a coded answer, in one
 * place: a `TrussError` keeps its code; anything else is logged with its stack
 * and answered with a code that says what kind of failure it was, never with
 * its own message (which may carry internals).
 */

/** What a client is told when the engine is closing: on a new handshake, a new event, and as the goodbye before its socket goes. */
export const SHUTTING_DOWN: ErrorPayload = { code: "SERVER_SHUTTING_DOWN", message: "The server is shutting down; reconnect shortly." };

/** A thrown value as a TrussError: itself when it is one, else `fallback`, with the original logged as `what`. */
export function toTrussError(error: unknown, fallback: ErrorPayload, log?: { logger: EngineContext["logger"]; what: string }): TrussError {
  if (isTrussError(error)) return error;
  log?.logger.error(log.what, { error: error instanceof Error ? error.stack : String(error) });
  return new TrussError(fallback.code, fallback.message, { cause: error });
}

/**
 * Codes a failure to encode a value for the wire (JSON.stringify, Socket.IO's
 * encoder): a string past V8's limit is `PAYLOAD_TOO_LARGE`; a BigInt, a
 * cycle or a stack overflow is `what` not being JSON.
 */
export function encodeFailure(error: unknown, what: string, notJson: ErrorPayload["code"] = "INVALID_PAYLOAD"): TrussError {
  if (error instanceof RangeError && /string length/i.test(error.message)) {
    return new TrussError("PAYLOAD_TOO_LARGE", `${what} is too large to send.`, { cause: error });
  }
  const reason = messageOf(error);
  return new TrussError(notJson, notJson === "INVALID_PAYLOAD" ? `${what} is not JSON (${reason}).` : `${what} could not be encoded on the server; it has been logged.`, {
    cause: error,
  });
}

/**
 * Awaits a store call and codes its failure. A driver's error (a dropped
 * connection, a timeout, a refusal by the server) becomes `STORE_UNAVAILABLE`:
 * the operation was not confirmed, and `truss_store_errors_total` counts it.
 * A programming error or a value the store could not take (`TypeError`,
 * `RangeError`, `URIError`, a failed clone) is a bug, not an outage: it becomes
 * `INTERNAL_ERROR`, so it neither tells clients to retry nor counts as a
 * store error. A store's own `TrussError` keeps its code: a value the store
 * can never hold (too long for its index, a character it cannot store) is
 * refused with `INVALID_PAYLOAD`, which clients and the outbox relay do not
 * retry. A call with no answer within the store's deadline
 * (`limits.storeTimeoutMs`, see `deadlines.ts`) fails as a driver's
 * error does. Every call, failed or not, is timed in
 * `truss_store_call_duration_seconds{store, operation}`.
 *
 * With `answers`, the answer is checked before the engine uses it: a store
 * that answers outside its contract (`null` where an object is due, a wrong
 * shape, a getter that throws) is a bug too, `INTERNAL_ERROR`, logged with the
 * store and the method, instead of a `TypeError` wherever the engine first
 * reads the answer (which, on the server API, reached the application uncoded).
 *
 * With `late`, an answer that comes after the deadline (and keeps the
 * contract) is handed to it: a write that landed after the caller was told
 * `STORE_UNAVAILABLE` can still be announced to the devices online. What
 * `late` throws is logged.
 */
export async function storeCall<T>(
  ctx: Pick<EngineContext, "metrics" | "logger" | "storeDeadlines">,
  store: StoreName,
  operation: string,
  call: () => Promise<T>,
  answers?: (answer: T) => boolean,
  late?: (answer: T) => void,
): Promise<T> {
  // Timed here rather than through timedStoreCall: on the hot paths one async frame per store call is enough.
  const start = performance.now();
  try {
    const answer = await withinStoreDeadline(ctx.storeDeadlines, store, call, late && lateAnswer(ctx, store, operation, answers, late));
    if (answers !== undefined && !keepsContract(answers, answer)) throw outsideContract(ctx, store, operation, answer);
    return answer;
  } catch (error) {
    if (isTrussError(error)) throw error;
    if (isBug(error)) {
      throw toTrussError(error, { code: "INTERNAL_ERROR", message: `The ${store} store failed on the server; it has been logged.` }, { logger: ctx.logger, what: `${store} store call failed` });
    }
    ctx.metrics.inc("truss_store_errors_total", { store });
    // The driver's words stay on the server (`cause`): they name hosts, roles and databases, and this message reaches clients.
    throw new TrussError("STORE_UNAVAILABLE", `The ${store} store is unavailable; the operation was not confirmed. Retry later.`, {
      cause: error,
    });
  } finally {
    ctx.metrics.observe("truss_store_call_duration_seconds", { store, operation }, secondsSince(start));
  }
}

/**
 * Awaits a store call within the store's deadline, timing it in
 * `truss_store_call_duration_seconds{store, operation}` whether it resolves or
 * rejects; the error passes through as it is, and an answer after the
 * deadline goes to `late`. For callers that handle store failures their own
 * way (presence is best effort).
 */
async function timedStoreCall<T>(
  ctx: Pick<EngineContext, "metrics" | "storeDeadlines">,
  store: StoreName,
  operation: string,
  call: () => Promise<T>,
  late?: (answer: T) => void,
): Promise<T> {
  const start = performance.now();
  try {
    return await withinStoreDeadline(ctx.storeDeadlines, store, call, late);
  } finally {
    ctx.metrics.observe("truss_store_call_duration_seconds", { store, operation }, secondsSince(start));
  }
}

/** `late`, for an answer that keeps the contract, with what it throws logged. */
function lateAnswer<T>(ctx: Pick<EngineContext, "logger">, store: StoreName, operation: string, answers: ((answer: T) => boolean) | undefined, late: (answer: T) => void) {
  return (answer: T): void => {
    if (answers !== undefined && !keepsContract(answers, answer)) return;
    try {
      late(answer);
    } catch (error) {
      ctx.logger.error(`${store} store's late ${operation} answer could not be used`, { error: messageOf(error) });
    }
  };
}

/** Whether `answer` passes `answers`; a check that throws (a getter of the answer did) is a no. */
function keepsContract<T>(answers: (answer: T) => boolean, answer: T): boolean {
  try {
    return answers(answer);
  } catch {
    return false;
  }
}

/** The coded failure of a store answer outside its contract, logged without reading the answer further. */
function outsideContract(ctx: Pick<EngineContext, "logger">, store: StoreName, operation: string, answer: unknown): TrussError {
  const kind = answer === null ? "null" : Array.isArray(answer) ? "an array" : typeof answer;
  ctx.logger.error(`${store} store's ${operation} answered outside its contract`, { answer: kind });
  return new TrussError("INTERNAL_ERROR", `The ${store} store answered ${operation} outside its contract on the server; it has been logged.`);
}

function isBug(error: unknown): boolean {
  return (
    error instanceof TypeError ||
    error instanceof RangeError ||
    error instanceof ReferenceError ||
    error instanceof SyntaxError ||
    error instanceof URIError ||
    (error instanceof Error && error.name === "DataCloneError")
  );
}

/**
 * Calls to a store whose answers are best effort (presence): connections
 * carry on while it is down. A failure is counted in
 * `truss_store_errors_total{store}` and logged once per outage instead of once
 * per call, and answers `undefined`; the first success after it logs that the
 * store is back. Each call is timed like any other store call, under the
 * store method's name. An answer that comes after the deadline goes to
 * `late`, if given (what it throws is dropped: it logs its own failures).
 */
export class BestEffortStore {
  private failing = false;

  /** @param what - how the logs name what goes stale ("presence", "scoped presence"). */
  constructor(
    private readonly ctx: Pick<EngineContext, "metrics" | "logger" | "storeDeadlines">,
    private readonly store: StoreName,
    private readonly what: string,
  ) {}

  async call<T>(operation: string, call: () => Promise<T>, late?: (answer: T) => void): Promise<T | undefined> {
    try {
      const result = await timedStoreCall(this.ctx, this.store, operation, call, late);
      if (this.failing) {
        this.failing = false;
        this.ctx.logger.warn(`${this.what} store is reachable again`);
      }
      return result;
    } catch (error) {
      this.ctx.metrics.inc("truss_store_errors_total", { store: this.store });
      if (!this.failing) {
        this.failing = true;
        this.ctx.logger.error(`${this.what} ${operation} failed; ${this.what} is stale until the store is back`, {
          error: messageOf(error),
        });
      }
      return undefined;
    }
  }

  /**
   * Calls `visit` with each item of what a store answered. An answer the
   * engine cannot use (a contributed store's bug: not a list, an item that
   * throws when read) is logged and dropped, never thrown: timers and
   * per-device queues that nobody awaits run these, and a rejection there
   * would end the process.
   */
  forEachAnswer<T>(operation: string, answer: Iterable<T> | null | undefined, visit: (item: T) => void): void {
    try {
      for (const item of answer ?? []) visit(item);
    } catch (error) {
      this.ctx.logger.warn(`${this.what} ${operation} could not be announced`, { error: messageOf(error) });
    }
  }
}
