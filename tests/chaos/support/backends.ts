import { randomUUID } from "node:crypto";
import {
  memoryDocumentStore,
  memoryInboxStore,
  memoryPresenceStore,
  memoryRevocationStore,
  memoryStreamStore,
  type EngineStores,
  type RealtimeEngineOptions,
} from "@truss/core";
import { redisAdapter, redisStores, type RedisClient } from "@truss/redis";
import { startTestServer, waitFor, withTimeout, type RedisServer, type TestServer } from "@truss/test-utils";
import { Redis } from "./deps.js";

/** Engine options plus a hook that may wrap the stores (to count or spy on their calls). */
export interface NodeOptions extends Partial<RealtimeEngineOptions> {
  wrapStores?: (stores: EngineStores) => EngineStores;
}

/**
 * The engines a case runs on. In memory there is one node, so `a` and `b`
 * are the same; on Redis they are two nodes on one redis-server, and cases
 * connect clients to `b` while the server side acts on `a`, so every message
 * crosses the adapter.
 */
export interface Topology {
  a: TestServer;
  b: TestServer;
  nodes: TestServer[];
  /** Every error event of the nodes' Redis clients (empty in memory). */
  redisErrors: Error[];
  close(): Promise<void>;
}

/** A store setup the same cases run against. */
export interface Backend {
  readonly name: "memory" | "redis";
  start(options?: NodeOptions): Promise<Topology>;
}

/** The in-memory default stores, one node. */
export const memoryBackend: Backend = {
  name: "memory",
  async start({ wrapStores, ...engine } = {}) {
    const stores: EngineStores = {
      presence: memoryPresenceStore(),
      inbox: memoryInboxStore(),
      documents: memoryDocumentStore(),
      streams: memoryStreamStore(),
      revocations: memoryRevocationStore(),
    };
    const server = await startTestServer({ ...(wrapStores ? wrapStores(stores) : stores), ...engine });
    return { a: server, b: server, nodes: [server], redisErrors: [], close: () => server.close() };
  },
};

/** The store client's command timeout, as `@truss/redis`'s README recommends for fail-fast stores. */
export const STORE_COMMAND_TIMEOUT_MS = 2_000;

/**
 * Two engine nodes on `redis`, with the Redis stores and the classic adapter,
 * under a fresh key and channel prefix per start so cases never share state.
 */
export function redisBackend(redis: () => RedisServer): Backend {
  return {
    name: "redis",
    async start({ wrapStores, ...engine } = {}) {
      const prefix = `truss-chaos-${randomUUID()}`;
      const clients: Array<RedisClient & { disconnect(): void }> = [];
      const redisErrors: Error[] = [];
      const nodes: TestServer[] = [];
      const track = <T extends RedisClient & { disconnect(): void }>(client: T): T => {
        client.on("error", (error: Error) => redisErrors.push(error));
        clients.push(client);
        return client;
      };
      const close = async () => {
        await Promise.allSettled(nodes.map((node) => withTimeout(node.close(), 10_000)));
        for (const client of clients) client.disconnect();
      };
      try {
        for (let index = 0; index < 2; index++) {
          const { url } = redis();
          const storeClient = track(
            new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: STORE_COMMAND_TIMEOUT_MS, lazyConnect: true }),
          );
          const pub = track(new Redis(url, { lazyConnect: true }));
          const sub = track(pub.duplicate() as typeof pub);
          await Promise.all([storeClient.connect(), pub.connect(), sub.connect()]);
          const stores: EngineStores = redisStores(storeClient, { prefix });
          nodes.push(
            await startTestServer({
              ...(wrapStores ? wrapStores(stores) : stores),
              adapter: redisAdapter(pub, sub, { key: prefix }),
              ...engine,
            }),
          );
        }
        for (const node of nodes) {
          const adapter = node.engine.io!.of("/").adapter;
          await waitFor(async () => (await adapter.serverCount()) >= 2, { intervalMs: 25, message: "both nodes' adapters subscribed" });
        }
      } catch (error) {
        await close();
        throw error;
      }
      return { a: nodes[0]!, b: nodes[1]!, nodes, redisErrors, close };
    },
  };
}

/**
 * Wraps every method of the stores to count its calls by
 * `<store>.<method>`, so a case can prove a refused input never reached a store.
 */
export function countStoreCalls(calls: Map<string, number>): (stores: EngineStores) => EngineStores {
  const wrap = <T extends object>(name: string, store: T): T =>
    new Proxy(store, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (typeof value !== "function" || typeof property !== "string") return value;
        return (...args: unknown[]) => {
          const key = `${name}.${property}`;
          calls.set(key, (calls.get(key) ?? 0) + 1);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  return (stores) => ({
    presence: wrap("presence", stores.presence),
    inbox: wrap("inbox", stores.inbox),
    documents: wrap("documents", stores.documents),
    streams: wrap("streams", stores.streams),
    revocations: wrap("revocations", stores.revocations),
  });
}

/** The calls counted so far whose `<store>.<method>` key starts with `prefix` (`"documents."`, `"inbox.append"`). */
export function callsTo(calls: ReadonlyMap<string, number>, prefix: string): number {
  let total = 0;
  for (const [key, count] of calls) if (key.startsWith(prefix)) total += count;
  return total;
}
