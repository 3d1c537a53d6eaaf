import type { Connection } from "./connection.js";
import type { EngineContext } from "./context.js";

/**
 * The life of one engine part. The engine lists its parts once and calls
 * each hook on every part in that order: `start` when it is bound to a
 * Socket.IO server, `open` and `close` for every connection, `stop` at
 * `close()`. A hook that returns a promise has started background work (a
 * store call, a replay) that the engine tracks, logs if it fails, and waits
 * for at `close()`.
 */
export interface EnginePart {
  /** The namespace exists: listen to other nodes, start timers (which never keep the process alive). */
  start?(): void;
  /** The connection was admitted and joined its company's and user's rooms. */
  open?(connection: Connection): void | Promise<unknown>;
  /** The connection's socket disconnected, for whatever reason. */
  close?(connection: Connection): void | Promise<unknown>;
  /** The engine is closing: stop timers; resolves once work in progress is done. */
  stop?(): void | Promise<void>;
}

/**
 * How a part made outside the engine (the outbox relay) joins an engine's
 * lifecycle: the engine puts it first in its parts (so it is started when the
 * engine is bound, and stopped first at `close()`) and hands back its logger
 * and metrics; a part that joins an engine already bound starts itself. An
 * engine that is closing throws instead: the part would never be stopped.
 * Keyed by a symbol, so it stays off the engine's public API.
 */
export const ADD_ENGINE_PART = Symbol("truss.addEnginePart");

/** An engine that takes parts made outside it ({@link ADD_ENGINE_PART}). */
export interface HostsEngineParts {
  [ADD_ENGINE_PART](part: EnginePart): Pick<EngineContext, "logger" | "metrics">;
}
