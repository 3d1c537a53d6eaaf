import { randomUUID } from "node:crypto";
import { scopedPresenceStoreSuite } from "@truss/conformance";
import { redisScopedPresenceStore, redisStores } from "@truss/redis";
import { requireRedisOrSkip, startRedisServer, type RedisServer } from "@truss/test-utils";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

/** The scoped presence suite, unchanged, against a real redis-server; each case gets its own clients. */
describe.runIf(requireRedisOrSkip("@truss/redis scoped presence against redis-server"))("redisScopedPresenceStore", () => {
  let server: RedisServer;
  const prefix = `truss-test-${randomUUID()}`;
  const clients = new Map<object, Redis>();

  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  const connect = async () => {
    const client = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true });
    await client.connect();
    return client;
  };

  scopedPresenceStoreSuite(
    test,
    async () => {
      const redis = await connect();
      const store = redisScopedPresenceStore({ redis, prefix });
      clients.set(store, redis);
      return store;
    },
    {
      prefix: "redisScopedPresenceStore (redis-server)",
      sharedBackend: true,
      teardown: async (store) => {
        await clients.get(store)?.quit();
        clients.delete(store);
      },
    },
  );

  test("redisStores builds it, and a scope's keys share one hash tag and expire", async () => {
    const redis = await connect();
    const prefix = `truss-keys-${randomUUID()}`;
    try {
      const { scopedPresence } = redisStores(redis, { prefix, presenceKeyTtlMs: 5_000 });
      const at = Date.now();
      await scopedPresence.put({ companyId: "acme:1", scope: "t:project:p-17", member: { memberId: "s1", userId: "ann", deviceId: "phone", state: null, joinedAt: at, updatedAt: at } }, 1_000);
      const keys = (await redis.keys(`{${prefix}:sp:*`)).sort();
      expect(keys).toEqual([`{${prefix}:sp:acme%3A1:t%3Aproject%3Ap-17}:expiry`, `{${prefix}:sp:acme%3A1:t%3Aproject%3Ap-17}:members`]);
      for (const key of keys) expect(await redis.pttl(key)).toBeGreaterThan(5_000);
    } finally {
      await redis.quit();
    }
  });
});
