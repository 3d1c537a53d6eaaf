import type { Namespace, Socket } from "socket.io";
import { Adapter } from "socket.io-adapter";
import type { Principal } from "./principal.js";
import type { InboxMessage, UserKey } from "../inbox/store.js";
import type { StreamLabel, StreamPosition, TrussClientEvents, TrussServerEvents } from "@truss/protocol";
import type { RevocationRecord } from "../revocations/store.js";
import type { MetricsRegistry } from "./metrics.js";
import type { Logger } from "./logger.js";
import type { StoreDeadlines } from "./deadlines.js";
import { messageOf } from "./errors.js";

/** The stores an engine runs on, by the name used in health and errors. */
/** What the nodes tell each other: a device was cut as a slow consumer (`cut`), or has been told so (`told`): it read the goodbye after all, or heard it on a later connection. */
export interface SlowConsumerNotice {
  kind: "cut" | "told";
  companyId: string;
  userId: string;
  deviceId: string;
  /** When the device was cut, in epoch milliseconds. */
  at: number;
}

/**
 * The event an adapter emits on itself when it may have missed messages from
 * other nodes (its subscription to them was lost and is back, as after a
 * Redis restart). The engine then reads every local device's inbox past what
 * it last delivered, so no stored message waits for the device's next reconnect.
 */
export const ADAPTER_RESUBSCRIBED_EVENT = "truss:resubscribed";

/** Events the engine's nodes send each other through the adapter. */
export interface TrussInterServerEvents {
  /** A message stored in a user's inbox on another node, for this node's sockets of that user. */
  /** `keyed`: stored with an idempotency key, so it may be offered again (absent from nodes of earlier releases). */
  "truss:inbox": (user: UserKey, message: InboxMessage, keyed?: boolean) => void;
  /** A revocation (`disconnectUser`, `unsubscribeUser`) for this node's sockets; answered with how many it reached. */
  "truss:revoke": (record: RevocationRecord, answer: (sockets: number) => void) => void;
  /** A device cut as a slow consumer, to be told why on its next connection, or told already. */
  "truss:slow-consumer": (notice: SlowConsumerNotice) => void;
}

/** What the engine keeps in `socket.data`: the principal the handshake admitted (replaced by `auth:refresh`). */
export interface TrussSocketData {
  principal: Principal;
}

/** The namespace Truss serves, typed with the protocol's events; application events go through {@link emitApplicationEvent}. */
export type TrussNamespace = Namespace<TrussClientEvents, TrussServerEvents, TrussInterServerEvents, TrussSocketData>;
/** A socket of {@link TrussNamespace}. */
export type TrussSocket = Socket<TrussClientEvents, TrussServerEvents, TrussInterServerEvents, TrussSocketData>;

/**
 * Emits an application event, whose name and payload the protocol's event
 * maps cannot know: the one place the typed wire is left on purpose. Callers
 * check the name against the reserved protocol events first. A broadcast's
 * third argument is its place in its stream, or only its stream's name.
 */
export function emitApplicationEvent(target: { emit(...args: never[]): unknown }, event: string, data: unknown, where?: StreamPosition | StreamLabel): void {
  const emitter = target as unknown as { emit(event: string, ...args: unknown[]): void };
  if (where) emitter.emit(event, data, where);
  else emitter.emit(event, data);
}

/** What the engine's services share. */
export interface EngineContext {
  /** The namespace once attached or bound; throws before. */
  namespace(): TrussNamespace;
  readonly metrics: MetricsRegistry;
  readonly logger: Logger;
  /** How long each store's calls may take (`limits.storeTimeoutMs`); none for the in-memory stores. */
  readonly storeDeadlines: StoreDeadlines;
  /**
   * Aborted, with `SERVER_SHUTTING_DOWN`, when the engine closes and stops
   * waiting for the application's work still running (handlers past the
   * shutdown's grace, authenticators of handshakes in flight): their signals
   * follow it, so that work can stop too.
   */
  readonly abandoned: AbortSignal;
}

/**
 * Whether the namespace's adapter reaches other nodes. The in-memory adapter
 * has none to reach and warns on every server-side emit.
 */
export const isClustered = (namespace: TrussNamespace): boolean => namespace.adapter.serverSideEmit !== Adapter.prototype.serverSideEmit;

/**
 * Listens for an event the other nodes send (`serverSideEmit`). The adapter
 * calls the listener from its Redis subscriber, where anything thrown would
 * end the process, on every node at once, since every node gets the event. So
 * `handle` answers `false` for arguments it cannot use (from a node of another
 * release, or with a bug), and anything it throws is caught: either way the
 * event is dropped, and the first such event of each name is logged.
 */
export function onNodeEvent<E extends keyof TrussInterServerEvents>(ctx: EngineContext, event: E, handle: (...args: unknown[]) => boolean): void {
  let logged = false;
  const dropped = (reason: string) => {
    if (logged) return;
    logged = true;
    ctx.logger.warn(`a malformed "${event}" from another node was dropped; further ones are dropped without a log line`, { reason });
  };
  ctx.namespace().on(event, ((...args: unknown[]) => {
    try {
      if (!handle(...args)) dropped("its arguments are not what this release sends");
    } catch (error) {
      dropped(messageOf(error));
    }
  }) as never);
}
