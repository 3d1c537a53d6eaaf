import { randomUUID } from "node:crypto";
import { redisPresenceStore, redisStores, type RedisStoresOptions } from "@truss/redis";
import { requireRedisOrSkip, sleep, startRedisServer, type RedisServer } from "@truss/test-utils";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { companyPresenceKeys, encodeId, sweepIndexKeys } from "../src/keys.js";

/** The sweep index and key expiry, which the conformance suite cannot observe. */
describe.runIf(requireRedisOrSkip("@truss/redis presence tests"))("redisPresenceStore on redis-server", () => {
  let server: RedisServer;
  let redis: Redis;
  const prefix = `truss-presence-${randomUUID()}`;
  const index = sweepIndexKeys(prefix);
  const device = () => ({ companyId: `company:${randomUUID()}`, userId: `user-${randomUUID()}`, deviceId: "phone" });

  beforeAll(async () => {
    server = await startRedisServer();
    redis = new Redis(server.url, { enableOfflineQueue: false, lazyConnect: true });
    await redis.connect();
  });
  afterEach(async () => {
    // Leave no due company behind for the next case's sweeps.
    await redis.del(index.due, index.writes);
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  test("a sweep that finds nothing expired keeps the company due for its next expiry", async () => {
    const store = redisPresenceStore({ redis, prefix });
    const phone = device();
    await store.connect(phone, 150);
    await sleep(100);
    await store.heartbeat([phone], 400);
    await sleep(150);
    // The first expiry passed, but the heartbeat moved it: nothing to report.
    expect(await store.sweepExpired()).toEqual([]);
    expect(Number(await redis.zscore(index.due, encodeId(phone.companyId)))).toBeGreaterThan(Date.now());
    await sleep(400);
    expect(await store.sweepExpired()).toEqual([{ companyId: phone.companyId, userId: phone.userId, online: false }]);
  });

  test("a company with nobody left leaves the index after its next sweep", async () => {
    const store = redisPresenceStore({ redis, prefix });
    const phone = device();
    await store.connect(phone, 100);
    await store.disconnect(phone);
    expect(await redis.zscore(index.due, encodeId(phone.companyId))).not.toBeNull();
    await sleep(150);
    expect(await store.sweepExpired()).toEqual([]);
    expect(await redis.zscore(index.due, encodeId(phone.companyId))).toBeNull();
    expect(await redis.hget(index.writes, encodeId(phone.companyId))).toBeNull();
  });

  test("a company claimed by a sweeper that died is not swept by others until its lease ends", async () => {
    const store = redisPresenceStore({ redis, prefix });
    const phone = device();
    await store.connect(phone, 50);
    await sleep(100);
    // What a sweeper does first: push the company's due time a lease ahead.
    const company = encodeId(phone.companyId);
    await redis.zadd(index.due, Date.now() + 60_000, company);
    expect(await store.sweepExpired()).toEqual([]);
    // Once the lease has passed (moved back here rather than waited for), it is swept.
    await redis.zadd(index.due, Date.now() - 1, company);
    expect(await store.sweepExpired()).toEqual([{ companyId: phone.companyId, userId: phone.userId, online: false }]);
  });

  test("presence keys expire keyTtlMs after the device TTL, in case no node sweeps any more", async () => {
    const store = redisPresenceStore({ redis, prefix, keyTtlMs: 5_000 });
    const phone = device();
    await store.connect(phone, 1_000);
    const keys = companyPresenceKeys(prefix, phone.companyId);
    for (const key of [keys.expiry, keys.devices, keys.users, keys.userBase + encodeId(phone.userId)]) {
      const ttl = await redis.pttl(key);
      expect(ttl, key).toBeGreaterThan(5_000);
      expect(ttl, key).toBeLessThanOrEqual(6_000);
    }
  });

  test("redisStores gives presenceKeyTtlMs to the presence store, and refuses the removed presenceTtl instead of ignoring it", async () => {
    const { presence } = redisStores(redis, { prefix, presenceKeyTtlMs: 5_000 });
    const phone = device();
    await presence.connect(phone, 1_000);
    const ttl = await redis.pttl(companyPresenceKeys(prefix, phone.companyId).devices);
    expect(ttl).toBeGreaterThan(5_000);
    expect(ttl).toBeLessThanOrEqual(6_000);
    expect(() => redisStores(redis, { prefix, presenceTtl: 5_000 } as RedisStoresOptions)).toThrow(/`presenceTtl` is now `presenceKeyTtlMs`/);
  });
});
