import { randomUUID } from "node:crypto";
import { inboxUndeliveredSuite } from "@truss/conformance";
import { redisInboxStore } from "@truss/redis";
import { requireRedisClusterOrSkip, requireRedisOrSkip, startRedisCluster, startRedisServer, type RedisCluster, type RedisServer } from "@truss/test-utils";
import { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe, test } from "vitest";

/**
 * The undelivered-calls suite, unchanged, on a redis-server and on a
 * three-master Redis Cluster (which refuses any script whose keys span
 * slots). Not on ioredis-mock: it lacks XTRIM, so no inbox case runs there
 * (see conformance.test.ts).
 */
function clientsOf<C extends { quit(): Promise<unknown> }>() {
  const clients = new Map<object, C>();
  return {
    own<T extends object>(store: T, client: C): T {
      clients.set(store, client);
      return store;
    },
    async teardown(store: object) {
      const client = clients.get(store);
      clients.delete(store);
      await client?.quit();
    },
  };
}

describe.runIf(requireRedisOrSkip("@truss/redis undelivered calls against redis-server"))("against redis-server", () => {
  let server: RedisServer;
  const prefix = `truss-test-${randomUUID()}`;
  const { own, teardown } = clientsOf<Redis>();
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  inboxUndeliveredSuite(
    test,
    async (options) => {
      const redis = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true });
      await redis.connect();
      return own(redisInboxStore({ redis, prefix, ...options }), redis);
    },
    { prefix: "redisInboxStore (redis-server)", sharedBackend: true, teardown },
  );
});

describe.runIf(requireRedisClusterOrSkip("@truss/redis undelivered calls on a Redis Cluster"))("on a three-master Redis Cluster", () => {
  let cluster: RedisCluster;
  const prefix = `truss-cluster-${randomUUID()}`;
  const { own, teardown } = clientsOf<Cluster>();
  beforeAll(async () => {
    cluster = await startRedisCluster();
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  inboxUndeliveredSuite(
    test,
    async (options) => {
      const redis = new Cluster(cluster.nodes, { enableOfflineQueue: false, lazyConnect: true, redisOptions: { maxRetriesPerRequest: 1 } });
      await redis.connect();
      return own(redisInboxStore({ redis, prefix, ...options }), redis);
    },
    { prefix: "redisInboxStore (Redis Cluster)", sharedBackend: true, teardown },
  );
});
