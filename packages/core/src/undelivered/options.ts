import type { InboxMessage } from "@truss/protocol";
import { hasUndeliveredCalls, type InboxStore } from "../inbox/store.js";

/** What the `undelivered` handler is called with: one message no device of the user acknowledged in time. */
export interface UndeliveredCall {
  /** The tenant. */
  companyId: string;
  /** The user the message was sent to. */
  userId: string;
  /**
   * The message as devices get it (a copy: changing it changes nothing).
   * Its `id` is the same on every attempt and on every node, but unique only
   * within this user's inbox: deduplicate by `companyId`, `userId` and `id`
   * together (the call is at least once), say
   * `JSON.stringify([companyId, userId, message.id])`.
   */
  message: InboxMessage;
  /**
   * The user's devices online now, on any node (0 also when presence could
   * not be read). Above 0, a device is connected but did not acknowledge:
   * a tab in the background, an app suspended by the phone.
   */
  devicesOnline: number;
  /** 1 for the first call of this message, 2 for the first retry, and so on. */
  attempt: number;
  /** Aborted when the call times out (`timeoutMs`) or the engine closes: pass it to `fetch` and the like. */
  signal: AbortSignal;
}

/**
 * Sends what the user missed another way (a push notification, an e-mail,
 * an SMS). Resolving means done; throwing or not settling within
 * `timeoutMs` means try again later, up to `maxAttempts` calls in all.
 */
export type UndeliveredHandler = (call: UndeliveredCall) => unknown;

/** When a message sent with `toUser` gets an undelivered call, for one event name or one send. */
export type UndeliveredChoice = false | { afterMs: number };

/**
 * The `undelivered` option of `createRealtimeEngine`: a hook for `toUser`
 * messages that no device of the user acknowledged within `afterMs` of
 * being stored. The call is claimed in the inbox store, so across nodes it
 * is made once (at least once when a node dies mid-call; deduplicate by
 * `companyId`, `userId` and `message.id` together, as ids are per user's
 * inbox). See docs/undelivered-messages.md.
 *
 * @example
 * ```ts
 * createRealtimeEngine({
 *   auth, inbox: redisInboxStore({ redis }),
 *   undelivered: {
 *     afterMs: 60_000,
 *     events: { "typing:started": false, "expense:rejected": { afterMs: 5_000 } },
 *     handler: async ({ companyId, userId, message }) => push.send(companyId, userId, message),
 *   },
 * });
 * ```
 */
export interface UndeliveredOptions {
  /** How long after a message is stored the handler is called if no device acknowledged it, in ms. Per event in `events`, per send in `toUser(...).emit(event, data, { undelivered })`. */
  afterMs: number;
  /** Called once per message no device acknowledged in time. */
  handler: UndeliveredHandler;
  /** Per event name: `false` (never called) or its own `{ afterMs }`. A send's own `undelivered` option wins. */
  events?: Readonly<Record<string, UndeliveredChoice>>;
  /**
   * How long a claimed call is left to the node that claimed it, in ms.
   * A node that dies mid-call leaves it to another node after this. More
   * than `timeoutMs`.
   *
   * @default 30000
   */
  leaseMs?: number;
  /**
   * How long one handler call may take, in ms; past it the call counts as
   * failed (its `signal` is aborted) and is retried.
   *
   * @default 10000
   */
  timeoutMs?: number;
  /**
   * Calls of one message, the first included, before it is given up
   * (logged once and counted as `given_up`).
   *
   * @default 5
   */
  maxAttempts?: number;
  /**
   * Wait before the first retry, in ms; doubled for each further retry, up
   * to a minute.
   *
   * @default 1000
   */
  backoffMs?: number;
  /**
   * How often each node looks for due calls, in ms: the most a call that
   * comes due is late while the node has a free slot. While more calls are
   * due than `concurrency`, a node claims again as soon as slots free, so a
   * backlog waits only for the calls ahead of it.
   *
   * @default 1000
   */
  pollIntervalMs?: number;
  /**
   * Handler calls one node runs at once.
   *
   * @default 16
   */
  concurrency?: number;
}

/** The `undelivered` option with its defaults applied and checked. */
export interface ResolvedUndeliveredOptions extends Required<Omit<UndeliveredOptions, "events">> {
  events: ReadonlyMap<string, UndeliveredChoice>;
}

/** Defaults of the `undelivered` option (`DEFAULTS.undelivered`). */
export const DEFAULT_UNDELIVERED = {
  leaseMs: 30_000,
  timeoutMs: 10_000,
  maxAttempts: 5,
  backoffMs: 1_000,
  pollIntervalMs: 1_000,
  concurrency: 16,
} as const;

/** The longest wait between two retries. */
export const MAX_UNDELIVERED_BACKOFF_MS = 60_000;

/**
 * Checks the `undelivered` option against the inbox store it needs.
 *
 * @throws TypeError naming the option that is wrong, or when the inbox
 * store cannot hold undelivered calls.
 */
export function resolveUndeliveredOptions(options: UndeliveredOptions | undefined, inbox: InboxStore): ResolvedUndeliveredOptions | null {
  if (options === undefined) return null;
  if (typeof options.handler !== "function") throw new TypeError("undelivered.handler must be a function ({ companyId, userId, message, devicesOnline, attempt, signal }) => …");
  if (!hasUndeliveredCalls(inbox)) {
    throw new TypeError(
      "createRealtimeEngine: `undelivered` needs an inbox store with claimUndelivered() and settleUndelivered() (the memory, Redis and PostgreSQL inbox stores have them); the `inbox` store given has not.",
    );
  }
  const integer = (value: number | undefined, fallback: number, name: string) => {
    if (value === undefined) return fallback;
    if (!(Number.isSafeInteger(value) && value > 0)) throw new TypeError(`undelivered.${name} must be a positive integer; got ${String(value)}.`);
    return value;
  };
  const events = new Map<string, UndeliveredChoice>();
  for (const [event, choice] of Object.entries(options.events ?? {})) {
    events.set(event, choice === false ? false : { afterMs: integer(choice?.afterMs, Number.NaN, `events["${event}"].afterMs`) });
  }
  const resolved = {
    afterMs: integer(options.afterMs, Number.NaN, "afterMs"),
    handler: options.handler,
    events,
    leaseMs: integer(options.leaseMs, DEFAULT_UNDELIVERED.leaseMs, "leaseMs"),
    timeoutMs: integer(options.timeoutMs, DEFAULT_UNDELIVERED.timeoutMs, "timeoutMs"),
    maxAttempts: integer(options.maxAttempts, DEFAULT_UNDELIVERED.maxAttempts, "maxAttempts"),
    backoffMs: integer(options.backoffMs, DEFAULT_UNDELIVERED.backoffMs, "backoffMs"),
    pollIntervalMs: integer(options.pollIntervalMs, DEFAULT_UNDELIVERED.pollIntervalMs, "pollIntervalMs"),
    concurrency: integer(options.concurrency, DEFAULT_UNDELIVERED.concurrency, "concurrency"),
  };
  if (Number.isNaN(resolved.afterMs)) throw new TypeError("undelivered.afterMs must be a positive integer of ms.");
  if (resolved.leaseMs <= resolved.timeoutMs) {
    throw new TypeError(`undelivered.leaseMs (${resolved.leaseMs}) must be more than undelivered.timeoutMs (${resolved.timeoutMs}), or a call still running would be claimed again.`);
  }
  return resolved;
}

/**
 * The delay of one send's undelivered call: its own `undelivered` option,
 * else its event's, else the engine's `afterMs`; `undefined` for none.
 *
 * @throws TypeError when the send names `undelivered` but the engine has no
 * `undelivered` option, or its `afterMs` is not a positive integer.
 */
export function undeliveredDelayOf(resolved: ResolvedUndeliveredOptions | null, event: string, choice: UndeliveredChoice | undefined): number | undefined {
  undeliveredChoiceOf(choice, "toUser(companyId, userId).emit");
  if (resolved === null) {
    if (choice === undefined || choice === false) return undefined;
    throw new TypeError("toUser(companyId, userId).emit: options.undelivered needs the engine's `undelivered` option (its handler).");
  }
  const chosen = choice ?? resolved.events.get(event) ?? { afterMs: resolved.afterMs };
  return chosen === false ? undefined : chosen.afterMs;
}

/**
 * A send's `undelivered` option, checked and copied (`false`, `{ afterMs }`
 * or `undefined` for none given): what the engine's `toUser(...).emit` and
 * an outbox's take.
 *
 * @throws TypeError naming `who` when it is neither `false` nor `{ afterMs }`
 * with a positive integer of ms.
 */
export function undeliveredChoiceOf(choice: unknown, who: string): UndeliveredChoice | undefined {
  if (choice === undefined || choice === false) return choice;
  const afterMs = typeof choice === "object" && choice !== null ? (choice as { afterMs?: unknown }).afterMs : undefined;
  if (typeof afterMs === "number" && Number.isSafeInteger(afterMs) && afterMs > 0) return { afterMs };
  throw new TypeError(`${who}: options.undelivered must be false or { afterMs } with a positive integer of ms; got ${JSON.stringify(choice)}.`);
}
