import type { Connection } from "./connection.js";

/**
 * What an engine part does as a connection opens and closes. The engine
 * calls every part's hooks in one loop, in the order it lists the parts, so
 * its connection path reads as that list. A hook that returns a promise has
 * started background work (a store call, a replay) that the engine tracks,
 * logs if it fails, and waits for at `close()`.
 */
export interface ConnectionHooks {
  /** The connection was admitted and joined its company's and user's rooms. */
  open?(connection: Connection): void | Promise<unknown>;
  /** The connection's socket disconnected, for whatever reason. */
  close?(connection: Connection): void | Promise<unknown>;
}
