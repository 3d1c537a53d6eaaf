import {
  createAdapter,
  createShardedAdapter,
  type RedisAdapterOptions as ClassicAdapterOptions,
} from "@socket.io/redis-adapter";
import { ADAPTER_RESUBSCRIBED_EVENT } from "@truss/core";
import { frameGuard, refusingNonStringRooms, type FrameGuard } from "./adapter-frames.js";
import type { RedisClient } from "./script.js";

/** `createShardedAdapter`'s own options (`channelPrefix`, `subscriptionMode`), which the package does not export by name. */
type ShardedRedisAdapterOptions = NonNullable<Parameters<typeof createShardedAdapter>[2]>;

/** Classic pub/sub (`PUBLISH`/`SUBSCRIBE`): any Redis version, one server or Sentinel. */
export interface ClassicRedisAdapterOptions extends Partial<ClassicAdapterOptions> {
  /** `false` or absent: classic pub/sub. */
  sharded?: false;
}

/**
 * Sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`): Redis 7+, the choice for Redis
 * Cluster, where classic pub/sub copies every message to every node.
 */
export interface ShardedAdapterOptions extends ShardedRedisAdapterOptions {
  /** `true`: sharded pub/sub. */
  sharded: true;
}

/** Options of {@link redisAdapter}: the flag plus the chosen adapter's own options. */
export type RedisAdapterOptions = ClassicRedisAdapterOptions | ShardedAdapterOptions;

/** What `createRealtimeEngine({ adapter })` (Socket.IO's `adapter` option) takes. */
export type RedisAdapterFactory = ReturnType<typeof createAdapter> | ReturnType<typeof createShardedAdapter>;

/**
 * The Socket.IO adapter that carries company broadcasts and room operations
 * between engine nodes, from `@socket.io/redis-adapter`.
 *
 * `pub` and `sub` must be two connections (a subscribed connection can run
 * nothing else); `sub = pub.duplicate()` is the usual way. Both may be ioredis
 * `Redis` or `Cluster` clients. For the sharded adapter on a Cluster, create
 * the subscriber with `new Cluster(nodes, { shardedSubscribers: true })` so
 * ioredis opens a subscriber per shard; without it `SSUBSCRIBE` reaches one
 * node only, so this throws instead of losing messages silently.
 *
 * A frame on the adapter's channels that it cannot handle (not from a node
 * of this engine, or malformed) is dropped, with a `process.emitWarning`
 * (type `TrussRedisAdapterWarning`) the first time on each kind of channel.
 * Whoever can publish there can still broadcast to any room: only the
 * engine's nodes should be allowed to (docs/security.md).
 *
 * @throws TypeError for a sharded adapter on a Cluster without `shardedSubscribers`.
 * @example
 * const pub = new Redis(url);
 * createRealtimeEngine({ auth, adapter: redisAdapter(pub, pub.duplicate()) });
 */
export function redisAdapter(pub: RedisClient, sub: RedisClient, options: RedisAdapterOptions = {}): RedisAdapterFactory {
  if (options.sharded === true) {
    const { sharded: _sharded, ...adapterOptions } = options;
    if (sub.isCluster && !(sub.options as { shardedSubscribers?: boolean }).shardedSubscribers) {
      throw new TypeError(
        "redisAdapter: the sharded adapter on Redis Cluster needs a subscriber created with " +
          "new Cluster(nodes, { shardedSubscribers: true }), so that each shard's channels are subscribed on that shard",
      );
    }
    return guardingEachAdapter(
      createShardedAdapter(handlingRejections(pub, { publishInBackground: true }), handlingRejections(sub, { frames: frameGuard() }), adapterOptions),
      sub,
    );
  }
  const { sharded: _sharded, ...adapterOptions } = options;
  return guardingEachAdapter(createAdapter(handlingRejections(pub), handlingRejections(sub, { frames: frameGuard() }), adapterOptions), sub);
}

/**
 * The factory, making each adapter it creates signal its resubscriptions and
 * refuse rooms that are not strings (see {@link refusingNonStringRooms}).
 */
function guardingEachAdapter<F extends RedisAdapterFactory>(factory: F, sub: RedisClient): F {
  guardSubscriptions(sub);
  const wrapped = function (this: unknown, namespace: Parameters<F>[0]) {
    const adapter = (factory as (namespace: Parameters<F>[0]) => ReturnType<F>)(namespace);
    refusingNonStringRooms(adapter);
    signallingResubscribe(adapter, sub);
    return adapter;
  };
  return wrapped as unknown as F;
}

/**
 * Makes the adapter emit `ADAPTER_RESUBSCRIBED_EVENT` once its subscriber
 * is back after losing its connection. Messages other nodes published
 * meanwhile (inbox pushes among them) never reached this node; the engine
 * answers the event by reading each local device's inbox past what it
 * delivered, so connected devices catch up without reconnecting.
 *
 * ioredis emits `ready` before it re-sends the subscriptions, so the signal
 * waits for a PING sent after them on the same connection: its reply means
 * the subscriptions are in place, and a store read after it cannot miss a
 * message that pub/sub would not carry.
 */
function signallingResubscribe(adapter: ReturnType<RedisAdapterFactory>, sub: RedisClient): void {
  let lost = false;
  const onClose = () => {
    lost = true;
  };
  const onReady = () => {
    if (!lost) return;
    lost = false;
    setImmediate(() => {
      void sub
        .ping()
        .catch(() => undefined)
        .then(() => adapter.emit(ADAPTER_RESUBSCRIBED_EVENT));
    });
  };
  sub.on("close", onClose);
  sub.on("ready", onReady);
  const close = adapter.close.bind(adapter);
  adapter.close = () => {
    sub.off("close", onClose);
    sub.off("ready", onReady);
    return close();
  };
}

/**
 * The client as the adapter sees it: every promise its methods return has a
 * rejection handler attached, and is still returned unchanged to the caller.
 *
 * `@socket.io/redis-adapter` fires most commands and forgets them (the classic
 * adapter's `publish` for every broadcast and server-side emit, the sharded
 * adapter's `SSUBSCRIBE` when a room is created). During a Redis outage
 * ioredis fails queued commands once `maxRetriesPerRequest` reconnects have
 * failed (about 10 s with the defaults), and each of those promises would be
 * an unhandled rejection, which ends a Node process. A broadcast is
 * at-most-once, so dropping it is the documented outcome; the outage itself is
 * reported by the client's `error` events and by the stores' health.
 *
 * With `publishInBackground`, `SPUBLISH` also resolves at once (with 0
 * receivers) while the command goes on in the background. The sharded
 * adapter awaits its publish before it delivers a broadcast to this node's
 * own sockets, so while Redis is down or not answering even same-node clients
 * would wait until ioredis gives up on the command. It never reads the reply;
 * ioredis still sends commands in order, so per-sender ordering holds.
 *
 * With `frames` (the subscriber), each listener the adapter adds for incoming
 * frames is added in its guarded form ({@link frameGuard}).
 */
function handlingRejections<T extends RedisClient>(client: T, options: { publishInBackground?: boolean; frames?: FrameGuard } = {}): T {
  const wrappers = new WeakMap<(...args: unknown[]) => unknown, (...args: unknown[]) => unknown>();
  return new Proxy(client, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      const method = value as (...args: unknown[]) => unknown;
      let wrapper = wrappers.get(method);
      if (!wrapper) {
        const inBackground = options.publishInBackground === true && property === "spublish";
        const { frames } = options;
        wrapper = (...args: unknown[]) => {
          const result = method.apply(target, frames ? frames.listenerArgs(property, args) : args);
          if (!(result instanceof Promise)) return result;
          result.catch(() => undefined);
          return inBackground ? Promise.resolve(0) : result;
        };
        wrappers.set(method, wrapper);
      }
      return wrapper;
    },
  });
}

/**
 * Makes the subscriber's `SUBSCRIBE`/`PSUBSCRIBE`/`SSUBSCRIBE` safe to call at
 * any time, once per client (other adapters may share it):
 *
 * - **Not during the connection handshake.** ioredis writes these commands at
 *   once while a new connection is still in its handshake (status
 *   `connect`), because Redis allows them while loading. Their reply puts the
 *   connection in subscriber mode, ioredis then refuses its own ready check
 *   ("Connection in subscriber mode, only subscriber commands may be used"),
 *   reconnects, and has forgotten the channels: the node never hears the
 *   other nodes. An adapter is created with the engine, so this happens to a
 *   subscriber that is still connecting when the app starts (ioredis#2037).
 *   A call made during the handshake waits for `ready` instead.
 * - **No unhandled rejections.** ioredis re-sends the subscriptions itself
 *   when it reconnects and never handles the promises those calls return. If
 *   the connection closes again before Redis answers (Redis flapping, or the
 *   app shutting down right after a restart), each rejects with "Connection
 *   is closed." unhandled, which ends a Node process. Every promise these
 *   methods return has a rejection handler; callers still get it unchanged.
 */
function guardSubscriptions(sub: RedisClient): void {
  const GUARDED = Symbol.for("@truss/redis:subscriptions-guarded");
  const target = sub as unknown as Record<string | symbol, unknown>;
  if (target[GUARDED] === true) return;
  target[GUARDED] = true;
  for (const name of ["subscribe", "psubscribe", "ssubscribe"]) {
    const method = target[name];
    if (typeof method !== "function") continue;
    target[name] = function (this: { status?: string; once?(event: "ready", listener: () => void): unknown }, ...args: unknown[]) {
      const call = () => (method as (...args: unknown[]) => unknown).apply(this, args);
      const result: unknown =
        this.status === "connect" && typeof this.once === "function"
          ? new Promise((resolve, reject) => {
              this.once!("ready", () => {
                try {
                  resolve(call());
                } catch (error) {
                  reject(error);
                }
              });
            })
          : call();
      if (result instanceof Promise) result.catch(() => undefined);
      return result;
    };
  }
}
