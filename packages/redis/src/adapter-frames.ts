/**
 * The subscriber's events that carry what is published on the adapter's
 * channels, with what each carries. ioredis emits every message under these
 * names; `@socket.io/redis-adapter` listens to the Buffer forms.
 */
const FRAME_EVENTS = new Map([
  ["pmessageBuffer", "broadcast channel"],
  ["pmessage", "broadcast channel"],
  ["messageBuffer", "request and response channels"],
  ["message", "request and response channels"],
  ["smessageBuffer", "sharded channels"],
  ["smessage", "sharded channels"],
]);

/** The EventEmitter methods that add a listener, and those that remove one. */
const ADDS_LISTENER = new Set(["on", "addListener", "once", "prependListener", "prependOnceListener"]);
const REMOVES_LISTENER = new Set(["off", "removeListener"]);

/** The `process.emitWarning` type of a dropped frame. */
const DROPPED_FRAME_WARNING = "TrussRedisAdapterWarning";

type Listener = (...args: unknown[]) => unknown;

/** What {@link frameGuard} returns: a listener's arguments, guarded. */
export interface FrameGuard {
  /**
   * The arguments of an EventEmitter method (`on`, `off`, …) called on the
   * subscriber, with a listener for a frame event replaced by its guarded
   * form (the same one each time, so removing the original removes it).
   * Any other call's arguments come back as they are.
   */
  listenerArgs(method: string | symbol, args: unknown[]): unknown[];
}

/**
 * Makes every listener the adapter registers for incoming frames handle each
 * frame inside a guard: what it throws is caught, and the promise it returns
 * (the classic adapter's request handler is async) gets a rejection handler.
 *
 * `@socket.io/redis-adapter` decodes and reads frames without checking them
 * (bad msgpack, `nil`, a broadcast without options, `rooms: 5`, a server-side
 * emit whose data is a string). Left alone, one such frame is an uncaught
 * exception or unhandled rejection on every node at once, since every node
 * gets it. It is guarded here, where the frames reach the adapter, because
 * the classic adapter binds its handlers when it is built. A dropped frame is
 * reported once per kind ({@link FRAME_EVENTS}) per `redisAdapter` call, with
 * `process.emitWarning`: the adapter has no engine logger, and a flood must
 * not flood the log.
 */
export function frameGuard(): FrameGuard {
  const guarded = new WeakMap<Listener, Listener>();
  const reported = new Set<string>();
  const drop = (kind: string, args: unknown[], error: unknown) => {
    if (reported.has(kind)) return;
    reported.add(kind);
    process.emitWarning(
      `A malformed frame on the Socket.IO Redis adapter's ${kind} (${channelOf(args)}) was dropped (${reasonOf(error)}); ` +
        "further ones there are dropped without a warning. Only the engine's nodes should be able to publish on these channels.",
      DROPPED_FRAME_WARNING,
    );
  };
  const guard = (kind: string, listener: Listener): Listener => {
    let wrapper = guarded.get(listener);
    if (!wrapper) {
      wrapper = function (this: unknown, ...args: unknown[]) {
        try {
          const result = listener.apply(this, args);
          if (result instanceof Promise) result.catch((error: unknown) => drop(kind, args, error));
          return result;
        } catch (error) {
          drop(kind, args, error);
          return undefined;
        }
      };
      guarded.set(listener, wrapper);
    }
    return wrapper;
  };
  return {
    listenerArgs(method, args) {
      const [event, listener] = args;
      const kind = typeof event === "string" ? FRAME_EVENTS.get(event) : undefined;
      if (kind === undefined || typeof listener !== "function") return args;
      if (ADDS_LISTENER.has(method as string)) return [event, guard(kind, listener as Listener), ...args.slice(2)];
      if (REMOVES_LISTENER.has(method as string)) return [event, guarded.get(listener as Listener) ?? listener, ...args.slice(2)];
      return args;
    },
  };
}

/**
 * Makes each socket refuse to join a room that is not a string, with a
 * `TypeError`. Truss names every room with a string; another kind can only
 * come from a frame (`REMOTE_JOIN` or `SOCKETS_JOIN` with `rooms: [7]`), and
 * a socket holding it would throw later, where the engine reads its rooms as
 * strings. Thrown while the frame is handled, it drops the frame instead
 * ({@link frameGuard}).
 */
export function refusingNonStringRooms(adapter: { addAll(id: string, rooms: Set<string>): Promise<void> | void }): void {
  const addAll = adapter.addAll.bind(adapter);
  adapter.addAll = (id, rooms) => {
    for (const room of rooms) {
      if (typeof room !== "string") throw new TypeError(`a socket cannot join a room of type ${typeof room}`);
    }
    return addAll(id, rooms);
  };
}

/** The channel a frame listener was called for: the argument before the message. */
function channelOf(args: unknown[]): string {
  const channel = args.at(-2);
  return Buffer.isBuffer(channel) || typeof channel === "string" ? channel.toString() : "unknown channel";
}

/** What a guarded listener threw, for the warning. */
function reasonOf(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
