import type { Connection } from "./connection.js";

/**
 * A socket's requests on one key (a room it subscribes to, a scope it is
 * present in) take effect in the order it sent them: each runs once the
 * requests it sent on that key before have finished. Without it, an
 * unsubscribe or a leave that came while the subscribe or the join waited
 * for the policy or a store found nothing to end, and the subscribe or join
 * then took effect after it. A request with nothing before it runs at once,
 * and one that finishes at once (an unsubscribe, a state update, usually)
 * stays synchronous and is not held. A socket is held only while one of its
 * requests runs.
 */
export class RequestOrder {
  /** Per socket, the last of its requests still running on each key, settled (never rejecting). */
  private readonly running = new Map<Connection, Map<string, Promise<void>>>();

  /** `request()`, once the requests `connection` sent on `key` before it have finished; its answer. */
  run<T>(connection: Connection, key: string, request: () => T | Promise<T>): T | Promise<T> {
    const keys = this.running.get(connection);
    const before = keys?.get(key);
    const result = before ? before.then(request) : request();
    if (!(result instanceof Promise)) return result;
    const held = keys ?? new Map<string, Promise<void>>();
    if (!keys) this.running.set(connection, held);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    held.set(key, settled);
    void settled.then(() => {
      if (held.get(key) !== settled) return;
      held.delete(key);
      if (held.size === 0) this.running.delete(connection);
    });
    return result;
  }
}
