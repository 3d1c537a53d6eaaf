import { randomUUID } from "node:crypto";
import { documentStoreSuite, inboxSuite, presenceStoreSuite, revocationStoreSuite } from "@truss/conformance";
import { redisDocumentStore, redisInboxStore, redisPresenceStore, redisRevocationStore } from "@truss/redis";
import { requireRedisClusterOrSkip, startRedisCluster, type RedisCluster } from "@truss/test-utils";
import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, test } from "vitest";
import { registerMessagingCases } from "./support/messaging-cases.js";
import { NodeGroup } from "./support/nodes.js";

/**
 * A local three-master Redis Cluster: the broadcast and inbox cases pass with
 * the sharded adapter (one subscriber per shard), and every store passes its
 * conformance suite unchanged, which holds only if each script's keys share
 * a hash tag (a cluster refuses cross-slot scripts).
 */
describe.runIf(requireRedisClusterOrSkip("@truss/redis Redis Cluster tests"))("on a three-master Redis Cluster", () => {
  let cluster: RedisCluster;

  beforeAll(async () => {
    cluster = await startRedisCluster();
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  describe("three nodes with the sharded adapter", () => {
    registerMessagingCases(async () => {
      const group = new NodeGroup({ cluster: cluster.nodes }, { sharded: true });
      try {
        return { group, nodes: await group.startThree() };
      } catch (error) {
        await group.closeAll();
        throw error;
      }
    });
  });

  describe("store conformance", () => {
    const prefix = `truss-cluster-${randomUUID()}`;
    const clients = new Map<object, Cluster>();
    // The README's store options, per cluster node.
    const connect = async () => {
      const client = new Cluster(cluster.nodes, { enableOfflineQueue: false, lazyConnect: true, redisOptions: { maxRetriesPerRequest: 1 } });
      await client.connect();
      return client;
    };
    const own = <T extends object>(store: T, client: Cluster): T => {
      clients.set(store, client);
      return store;
    };
    const teardown = async (store: object) => {
      const client = clients.get(store);
      clients.delete(store);
      await client?.quit();
    };

    presenceStoreSuite(
      test,
      async () => {
        const redis = await connect();
        return own(redisPresenceStore({ redis, prefix }), redis);
      },
      { prefix: "redisPresenceStore (Redis Cluster)", sharedBackend: true, teardown },
    );
    inboxSuite(
      test,
      async (options) => {
        const redis = await connect();
        return own(redisInboxStore({ redis, prefix, ...options }), redis);
      },
      { prefix: "redisInboxStore (Redis Cluster)", sharedBackend: true, teardown },
    );
    documentStoreSuite(
      test,
      async (options) => {
        const redis = await connect();
        return own(redisDocumentStore({ redis, prefix, ...options }), redis);
      },
      { prefix: "redisDocumentStore (Redis Cluster)", sharedBackend: true, teardown },
    );
    revocationStoreSuite(
      test,
      async () => {
        const redis = await connect();
        return own(redisRevocationStore({ redis, prefix }), redis);
      },
      { prefix: "redisRevocationStore (Redis Cluster)", sharedBackend: true, teardown },
    );
  });
});
