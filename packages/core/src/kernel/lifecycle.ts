import type { Connection } from "./connection.js";

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
