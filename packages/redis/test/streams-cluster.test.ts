import { randomUUID } from "node:crypto";
import { streamStoreSuite } from "@truss/conformance";
import { redisStreamStore } from "@truss/redis";
import { requireRedisClusterOrSkip, startRedisCluster, type RedisCluster } from "@truss/test-utils";
import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, test } from "vitest";

/**
 * The stream store's conformance suite, unchanged, on a local three-master
 * Redis Cluster: it passes only if both keys of a stream share a hash tag (a
 * cluster refuses cross-slot scripts), and the concurrent-append case spreads
 * its appends over two cluster clients, as two engine nodes would.
 */
describe.runIf(requireRedisClusterOrSkip("@truss/redis stream store on Redis Cluster"))("redisStreamStore on a three-master Redis Cluster", () => {
  let cluster: RedisCluster;

  beforeAll(async () => {
    cluster = await startRedisCluster();
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  const prefix = `truss-cluster-streams-${randomUUID()}`;
  const clients = new Map<object, Cluster>();
  // The README's store options, per cluster node.
  const connect = async () => {
    const client = new Cluster(cluster.nodes, { enableOfflineQueue: false, lazyConnect: true, redisOptions: { maxRetriesPerRequest: 1 } });
    await client.connect();
    return client;
  };

  streamStoreSuite(
    test,
    async (options) => {
      const redis = await connect();
      const store = redisStreamStore({ redis, prefix, ...options });
      clients.set(store, redis);
      return store;
    },
    {
      prefix: "redisStreamStore (Redis Cluster)",
      sharedBackend: true,
      async teardown(store) {
        await clients.get(store)?.quit();
        clients.delete(store);
      },
    },
  );
});
