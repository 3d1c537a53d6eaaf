import { clientRefusal, messageOf, TrussError, type ErrorPayload } from "../kernel/errors.js";
import { PROTOCOL_EVENTS, RESERVED_EVENTS } from "@truss/protocol";
import type { Connection } from "../kernel/connection.js";
import { type EngineContext } from "../kernel/context.js";
import { packetBytes, TokenBucket, UserBudgets, type UserBudget } from "../kernel/limits.js";
import { secondsSince } from "../kernel/metrics.js";
import { encodeFailure, SHUTTING_DOWN, toTrussError } from "../kernel/failures.js";
import { assertDepth, isWellFormedText } from "../kernel/payload.js";

/**
 * A handler of one client event: resolves with the ack body, or throws a
 * TrussError. `meta` is the event's optional second argument (an
 * application event's `{ mutationId }`), unchecked.
 */
export type EventHandler = (connection: Connection, payload: unknown, meta?: unknown) => Promise<object | void>;

type Ack = (response: unknown) => void;

/** Checks that run before any handler. */
export interface DispatchLimits {
  maxPayloadBytes: number;
  maxDepth: number;
  /** Events a second per socket. */
  eventsPerSecond: number;
  /** Events a second per user, over all their sockets on this node. */
  userEventsPerSecond: number;
  /** Packet bytes a second per user, over all their sockets on this node. */
  userBytesPerSecond: number;
}

/** How often budgets that have refilled are let go (see `Dispatcher.releaseFullBudgets`). */
const BUDGET_SWEEP_MS = 5_000;

/**
 * What the dispatcher keeps for one socket: its own event budget (one object,
 * it is per socket), the budget it shares with the user's other sockets, and
 * the size of the packet being dispatched.
 */
class SocketBudget extends TokenBucket {
  /** Size of the last packet the socket sent, all its frames, set before the event is dispatched. */
  lastPacketBytes = 0;
  /** When the last "rate limited" notice went out, to send at most one a second. */
  lastRateNoticeAt = 0;

  constructor(
    perSecond: number,
    readonly user: UserBudget,
  ) {
    super(perSecond);
  }
}

/**
 * Routes every client event of a socket: size limit, rate limit, known event,
 * nesting depth, then the handler, with its result or coded error sent back in
 * the ack. One function per socket replaces a listener per event per socket,
 * which matters at tens of thousands of idle connections.
 *
 * Every path ends in a coded answer: a handler that throws, rejects, or
 * returns what cannot be encoded (a BigInt, a cycle, a string past V8's
 * limit) is answered with a code (`INTERNAL_ERROR`, or `HANDLER_ERROR` for
 * the application's own handler, or `PAYLOAD_TOO_LARGE`), never left to
 * escape as an unhandled rejection that would end the process.
 */
export class Dispatcher {
  /** Acks of calls still running, answered with `SERVER_SHUTTING_DOWN` if `close()` cannot wait for them. */
  private readonly inFlight = new Set<Ack>();
  private closing = false;
  /**
   * The budget of each open connection that has sent an event since its
   * budget was last found full: a full budget is the same as none, so
   * {@link releaseFullBudgets} lets it go, and a connection that subscribed
   * once and went quiet holds no budget.
   */
  private readonly budgets = new Map<Connection, SocketBudget>();
  private sweeper: ReturnType<typeof setInterval> | undefined;
  /** Opening more sockets must not multiply a user's budget, so all of a user's sockets here share one. */
  private readonly users: UserBudgets;

  constructor(
    private readonly ctx: EngineContext,
    private readonly handlers: ReadonlyMap<string, EventHandler>,
    private readonly limits: DispatchLimits,
  ) {
    this.users = new UserBudgets({
      eventsPerSecond: limits.userEventsPerSecond,
      bytesPerSecond: limits.userBytesPerSecond,
      bytesCapacity: Math.max(limits.userBytesPerSecond, limits.maxPayloadBytes),
    });
  }

  /**
   * Routes every event of a new connection through this dispatcher. The
   * connection's budget (and its share of the user's) is made when it sends
   * its first event: an unspent budget is a full one, so an idle connection
   * holds none, which is most of them at tens of thousands of connections.
   */
  open(connection: Connection): void {
    // Engine.IO emits a message packet's data to its listeners in turn, Socket.IO's decoding and dispatching it:
    // first in line, the size is there when `dispatch` runs. ("data" has Socket.IO's listener already, so this adds
    // no key to the connection's table of events, as "packet" did, at every connection.) A binary event is its text
    // header then one frame per attachment, dispatched after the last: its size is all of them.
    connection.socket.conn.prependListener("data", (data: unknown) => {
      const budget = this.budgetOf(connection);
      budget.lastPacketBytes = typeof data === "string" ? packetBytes(data) : budget.lastPacketBytes + packetBytes(data);
    });
    useMiddleware(connection.socket, (packet) => this.dispatch(connection, this.budgetOf(connection), packet));
  }

  /** Starts letting full budgets go, every {@link BUDGET_SWEEP_MS}. */
  start(): void {
    this.sweeper ??= setInterval(() => this.releaseFullBudgets(), BUDGET_SWEEP_MS).unref();
  }

  /** Stops the sweep. */
  stop(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /**
   * Lets go of the budgets that have refilled: the connection's own bucket is
   * full, so its next event starts a new, full one. The user's shared budget
   * is given back the same way as when the socket closes: kept while another
   * socket of the user holds it or until it has refilled.
   */
  releaseFullBudgets(now = Date.now()): void {
    for (const [connection, budget] of this.budgets) {
      if (budget.msUntilFull(now) > 0) continue;
      this.budgets.delete(connection);
      this.users.release(connection.userKey, budget.user);
    }
  }

  /** Gives the connection's share of its user's budget back, if it took one. */
  close(connection: Connection): void {
    const budget = this.budgets.get(connection);
    if (!budget) return;
    this.budgets.delete(connection);
    this.users.release(connection.userKey, budget.user);
  }

  private budgetOf(connection: Connection): SocketBudget {
    let budget = this.budgets.get(connection);
    if (!budget) {
      budget = new SocketBudget(this.limits.eventsPerSecond, this.users.acquire(connection.userKey));
      this.budgets.set(connection, budget);
    }
    return budget;
  }

  /** How many open connections hold a budget of their own (those that sent an event and have not refilled since). */
  get budgetedConnections(): number {
    return this.budgets.size;
  }

  /** How many users hold a shared budget on this node (those connected, and those who left one still refilling). */
  get budgetedUsers(): number {
    return this.users.size;
  }

  /** Handles one packet (`[event, ...args, ack?]`) of a socket. */
  private dispatch(connection: Connection, budget: SocketBudget, packet: unknown[]): void {
    const { ctx, limits } = this;
    // Read in place: a copy of the arguments for every event is garbage at thousands of events a second.
    const event = packet[0];
    const ack = packet.length > 1 && typeof packet[packet.length - 1] === "function" ? (packet[packet.length - 1] as Ack) : undefined;
    const argc = packet.length - (ack ? 2 : 1);
    const payload = argc > 0 ? packet[1] : undefined;
    const meta = argc > 1 ? packet[2] : undefined;
    const name = typeof event === "string" ? event : String(event);
    const start = performance.now();
    ctx.metrics.inc("truss_events_received_total");
    const company = ctx.metrics.company(connection.principal.companyId);
    if (company !== null) ctx.metrics.inc("truss_company_events_received_total", { company });

    if (this.closing) return refuse(ctx, connection, ack, SHUTTING_DOWN);
    if (budget.lastPacketBytes > limits.maxPayloadBytes) {
      return refuse(ctx, connection, ack, {
        code: "PAYLOAD_TOO_LARGE",
        message: `"${name}" was ${budget.lastPacketBytes} bytes; the limit is ${limits.maxPayloadBytes}.`,
      });
    }
    const overBudget = spendBudgets(budget);
    if (overBudget !== null) {
      const now = Date.now();
      // Without an ack to answer, tell a flooding socket once a second, not once per event.
      if (!ack && now - budget.lastRateNoticeAt < 1000) {
        ctx.metrics.inc("truss_errors_total", { code: "RATE_LIMITED" });
        return;
      }
      budget.lastRateNoticeAt = now;
      return refuse(ctx, connection, ack, { code: "RATE_LIMITED", message: overBudget });
    }
    const handler = this.handlers.get(name);
    if (!handler) {
      return refuse(ctx, connection, ack, { code: "UNKNOWN_EVENT", message: `"${name}" is not an event this server handles.` });
    }
    try {
      assertDepth(payload, limits.maxDepth, `The payload of "${name}"`);
    } catch (error) {
      return refuse(ctx, connection, ack, errorPayload(ctx, name, error));
    }
    if (ack) this.inFlight.add(ack);
    // A handler that throws synchronously must still answer through the ack.
    let handled: Promise<object | void>;
    try {
      handled = Promise.resolve(handler(connection, payload, meta));
    } catch (error) {
      handled = Promise.reject(error);
    }
    // `name` has a handler: a protocol event or a registered application event, so the label is bounded.
    handled.then(
      (body) => {
        if (ack) this.inFlight.delete(ack);
        answer(ctx, connection, ack, name, body);
        ctx.metrics.observe("truss_command_duration_seconds", { event: name, outcome: "ok" }, secondsSince(start));
      },
      (error: unknown) => {
        if (ack) this.inFlight.delete(ack);
        refuse(ctx, connection, ack, errorPayload(ctx, name, error));
        ctx.metrics.observe("truss_command_duration_seconds", { event: name, outcome: "error" }, secondsSince(start));
      },
    );
  }

  /**
   * Refuses new events with `SERVER_SHUTTING_DOWN`, waits up to `graceMs` for
   * running calls to answer, then answers the rest with `SERVER_SHUTTING_DOWN`
   * (their outcome is not confirmed: a write may still land).
   */
  async drain(graceMs: number): Promise<void> {
    this.closing = true;
    const deadline = Date.now() + graceMs;
    while (this.inFlight.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    for (const ack of this.inFlight) {
      this.ctx.metrics.inc("truss_errors_total", { code: SHUTTING_DOWN.code });
      ack({ ok: false, error: SHUTTING_DOWN_UNCONFIRMED });
    }
    this.inFlight.clear();
    this.users.clear();
  }
}

/**
 * `socket.use(middleware)`, without the slack: Socket.IO keeps a socket's
 * middlewares in an array that starts empty, and the first push grows it to
 * V8's sixteen slots, 152 bytes at every connection. When the engine's is the
 * only middleware, as it usually is, a one-slot array does the same job.
 * Anything else (middlewares of the application's already there, or a
 * Socket.IO that keeps them otherwise) goes through `use`.
 */
function useMiddleware(socket: Connection["socket"], middleware: Parameters<Connection["socket"]["use"]>[0]): void {
  const held = socket as unknown as { fns?: unknown };
  if (Array.isArray(held.fns) && held.fns.length === 0) held.fns = [middleware];
  else socket.use(middleware);
}

/**
 * Spends one event (and the packet's bytes) from the socket's budget and the
 * user's, or none of them: resolves `null`, or why the event is refused,
 * naming the budget that ran out.
 */
function spendBudgets(budget: SocketBudget): string | null {
  const now = Date.now();
  const { events, bytes } = budget.user;
  const size = budget.lastPacketBytes;
  if (!budget.has(1, now)) return `Too many events; this connection may send ${budget.perSecond} a second (limits.eventsPerSecond).`;
  if (!events.has(1, now)) {
    return `Too many events from this user; all of the user's connections to this server together may send ${events.perSecond} a second (limits.userEventsPerSecond).`;
  }
  if (!bytes.has(size, now)) {
    return `Too much data from this user; all of the user's connections to this server together may send ${bytes.perSecond} bytes a second (limits.userBytesPerSecond).`;
  }
  budget.spend(1);
  events.spend(1);
  bytes.spend(size);
  return null;
}

const SHUTTING_DOWN_UNCONFIRMED: ErrorPayload = {
  code: "SERVER_SHUTTING_DOWN",
  message: "The server shut down before this call finished; its outcome is not confirmed. Retry after reconnecting.",
};

/** Sends a handler's result; an answer that cannot be encoded becomes a coded refusal instead. */
function answer(ctx: EngineContext, connection: Connection, ack: Ack | undefined, event: string, body: object | void): void {
  if (!ack) return;
  try {
    ack(body ? { ok: true, ...body } : { ok: true });
  } catch (error) {
    // Socket.IO encodes inside `ack` and marks it sent only afterwards, so it can still carry the refusal.
    ctx.logger.error(`the answer to "${event}" could not be encoded`, { error: messageOf(error) });
    refuse(ctx, connection, ack, encodeFailure(error, `The answer to "${event}"`, unencodableAnswerCode(event)).toJSON());
  }
}

/**
 * The code of an answer that is not JSON. The application's handler made it:
 * the same request would get it again, so it is `HANDLER_ERROR`, which
 * clients take as final (a retryable code made the client's outbox run the
 * handler again and again). A protocol handler's is a bug in Truss.
 */
function unencodableAnswerCode(event: string): ErrorPayload["code"] {
  return RESERVED_EVENTS.has(event) ? "INTERNAL_ERROR" : "HANDLER_ERROR";
}

/** Sends a coded refusal: in the ack when there is one, else as an `error` event. */
export function refuse(ctx: EngineContext, connection: Connection, ack: Ack | undefined, error: ErrorPayload): void {
  ctx.metrics.inc("truss_errors_total", { code: error.code });
  if (ack) ack({ ok: false, error });
  else connection.socket.emit(PROTOCOL_EVENTS.error, error);
}

function errorPayload(ctx: EngineContext, event: string, error: unknown): ErrorPayload {
  const fallback = { code: "INTERNAL_ERROR" as const, message: `"${event}" failed on the server; it has been logged.` };
  return toTrussError(error, fallback, { logger: ctx.logger, what: `handler for "${event}" failed` }).toJSON();
}

/** Reads a required string field of a client payload. */
export function requireString(payload: unknown, field: string, maxLength = 256): string {
  const value = (payload as Record<string, unknown> | null | undefined)?.[field];
  if (typeof value !== "string" || value.length === 0 || value.length > maxLength || !isWellFormedText(value)) {
    throw clientRefusal("INVALID_PAYLOAD", `"${field}" must be a non-empty string of well-formed Unicode, at most ${maxLength} characters.`);
  }
  return value;
}

/** Reads a required non-negative integer field of a client payload. */
export function requireInteger(payload: unknown, field: string, { min = 0, optional = false } = {}): number {
  const value = (payload as Record<string, unknown> | null | undefined)?.[field];
  if (value === undefined && optional) return Number.NaN;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw clientRefusal("INVALID_PAYLOAD", `"${field}" must be an integer of at least ${min}.`);
  }
  return value;
}

/** Reads a required plain-object field of a client payload. */
export function requireObject(payload: unknown, field: string): Record<string, unknown> {
  const value = (payload as Record<string, unknown> | null | undefined)?.[field];
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw clientRefusal("INVALID_PAYLOAD", `"${field}" must be an object.`);
  }
  return value as Record<string, unknown>;
}
