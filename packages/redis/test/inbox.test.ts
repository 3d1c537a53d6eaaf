import { randomUUID } from "node:crypto";
import { redisInboxStore } from "@truss/redis";
import { requireRedisOrSkip, startRedisServer, waitFor, type RedisServer } from "@truss/test-utils";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { inboxKeys } from "../src/keys.js";

/** What the conformance suite cannot see: Redis itself, failures, and several nodes' totals. */
describe.runIf(requireRedisOrSkip("@truss/redis inbox tests"))("redisInboxStore on redis-server", () => {
  let server: RedisServer;
  const clients: Redis[] = [];
  const prefix = `truss-inbox-${randomUUID()}`;

  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.disconnect();
  });
  afterAll(async () => {
    await server?.stop();
  });

  const user1 = { companyId: "acme", userId: "user-1" };

  const connect = async () => {
    const client = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true });
    clients.push(client);
    await client.connect();
    return client;
  };

  test("a resolved append is in the user's stream under its id", async () => {
    const redis = await connect();
    const user = { companyId: "acme:{1}", userId: "user:1{x}" };
    const { message } = await redisInboxStore({ redis, prefix }).append(user, "expense:approved", { amount: 12 });
    const entries = await redis.xrange(inboxKeys(prefix, user.companyId, user.userId).log, "-", "+");
    expect(entries).toEqual([[message.id, ["event", "expense:approved", "data", '{"amount":12}']]]);
  });

  test("append rejects while Redis is down and works again once it is back", async () => {
    const redis = await connect();
    const inbox = redisInboxStore({ redis, prefix });
    await server.stop();
    const startedAt = Date.now();
    await expect(inbox.append(user1, "expense:approved", {})).rejects.toThrow();
    const ping = inbox.ping?.bind(inbox);
    expect(ping).toBeTypeOf("function");
    await expect(ping!()).rejects.toThrow();
    // Rejected, not queued until a reconnect: the engine must learn at once.
    expect(Date.now() - startedAt).toBeLessThan(1_000);

    await server.restart();
    await waitFor(() => redis.status === "ready", { message: "ioredis to reconnect" });
    const { message } = await inbox.append(user1, "expense:approved", {});
    expect(await inbox.read(user1, null, 10)).toEqual([message]);
  });

  test("drop totals counted on one node are reported by every node, within about a second", async () => {
    const [nodeA, nodeB] = [
      redisInboxStore({ redis: await connect(), prefix, maxLength: 2 }),
      redisInboxStore({ redis: await connect(), prefix, maxLength: 2 }),
    ];
    const before = await nodeB.dropped();
    const user = { companyId: "acme", userId: `user-${randomUUID()}` };
    for (let index = 0; index < 5; index += 1) await nodeA.append(user, "crew:changed", { index });
    // Node A adds its counts to the shared hash in one script a second, not one per append.
    await expect.poll(async () => (await nodeB.dropped()).overCap - before.overCap, { timeout: 3000, interval: 100 }).toBe(3);
    expect((await nodeA.dropped()).overCap - before.overCap).toBe(3);
    expect((await nodeB.dropped()).expired).toBe(before.expired);
  });

  test("undefined data is delivered as undefined, not as null", async () => {
    const inbox = redisInboxStore({ redis: await connect(), prefix });
    const user = { companyId: "acme", userId: "user-2" };
    const { message } = await inbox.append(user, "ping", undefined);
    expect(message.data).toBeUndefined();
    expect((await inbox.read(user, null, 1))[0]?.data).toBeUndefined();
  });

  test("ids that are not <ms>-<seq> are refused before anything is sent", async () => {
    const inbox = redisInboxStore({ redis: await connect(), prefix });
    const user = { companyId: "acme", userId: "user-3" };
    await expect(inbox.ack({ ...user, deviceId: "phone" }, "latest")).rejects.toThrow(TypeError);
    await expect(inbox.read(user, "12", 10)).rejects.toThrow(TypeError);
    await expect(inbox.read(user, `${"1".repeat(17)}-0`, 10)).rejects.toThrow(TypeError);
  });

  test("acknowledged ids are stored without leading zeros, so a cursor compares exactly", async () => {
    const inbox = redisInboxStore({ redis: await connect(), prefix });
    const phone = { companyId: "acme", userId: `user-${randomUUID()}`, deviceId: "phone" };
    await inbox.ack(phone, "0010-0");
    expect(await inbox.cursor(phone)).toBe("10-0");
    await inbox.ack(phone, "9-5");
    expect(await inbox.cursor(phone)).toBe("10-0");
  });

  test("a user keeps maxCursorsPerUser cursors, in keys that expire with the TTL, however many device ids they cycle through", async () => {
    const redis = await connect();
    const ttlMs = 60_000;
    const inbox = redisInboxStore({ redis, prefix, ttlMs, maxCursorsPerUser: 3 });
    const user = { companyId: "acme", userId: `user-${randomUUID()}` };
    const keys = inboxKeys(prefix, user.companyId, user.userId);
    const { message } = await inbox.append(user, "n", {});
    for (let index = 0; index < 20; index += 1) await inbox.ack({ ...user, deviceId: `device-${index}` }, message.id);
    expect(await redis.hkeys(keys.cursors)).toEqual(["device-17", "device-18", "device-19"]);
    expect(await redis.zrange(keys.cursorOrder, 0, -1)).toEqual(["device-17", "device-18", "device-19"]);
    for (const key of [keys.cursors, keys.cursorOrder]) {
      const pttl = await redis.pttl(key);
      expect(pttl).toBeGreaterThan(ttlMs - 5_000);
      expect(pttl).toBeLessThanOrEqual(ttlMs);
    }

    // Cursors kept before the cap are forgotten first, by the next ack that moves one.
    await redis.hset(keys.cursors, { "old-1": message.id, "old-2": message.id });
    await redis.persist(keys.cursors);
    await inbox.ack({ ...user, deviceId: "device-17" }, `${Number(message.id.split("-")[0]) + 1}-0`);
    expect((await redis.hkeys(keys.cursors)).sort()).toEqual(["device-17", "device-18", "device-19"]);
    expect(await redis.pttl(keys.cursors)).toBeGreaterThan(ttlMs - 5_000);
    expect(() => redisInboxStore({ redis, maxCursorsPerUser: 0 })).toThrow(RangeError);
  });

  test("pending undelivered calls are indexed by their message's ms, so an ack ranges only over the calls it cancels", async () => {
    const redis = await connect();
    const inbox = redisInboxStore({ redis, prefix });
    const user = { companyId: "acme", userId: `user-${randomUUID()}` };
    const phone = { ...user, deviceId: "phone" };
    const keys = inboxKeys(prefix, user.companyId, user.userId);
    const ids: string[] = [];
    for (let index = 0; index < 5; index += 1) ids.push((await inbox.append(user, "n", { index }, { undeliveredAfterMs: 3_600_000 })).message.id);
    const byId = () => redis.zrange(keys.undeliveredById, 0, -1, "WITHSCORES");
    const scored = (kept: string[]) => kept.flatMap((id) => [id, id.slice(0, id.indexOf("-"))]);
    expect(await byId()).toEqual(scored(ids));

    await inbox.ack(phone, ids[1]!);
    expect(await redis.zrange(keys.undelivered, 0, -1)).toEqual(ids.slice(2));
    expect(await byId()).toEqual(scored(ids.slice(2)));

    // Calls recorded before the index existed are indexed by the next ack, and cancelled as before.
    await redis.del(keys.undeliveredById);
    await inbox.ack(phone, "0-1");
    expect(await byId()).toEqual(scored(ids.slice(2)));
    await inbox.ack(phone, ids[3]!);
    expect(await redis.zrange(keys.undelivered, 0, -1)).toEqual(ids.slice(4));
    expect(await byId()).toEqual(scored(ids.slice(4)));
  });

  test("idempotency keys live in the user's hash tag, expire with the TTL, and cost nothing without a key", async () => {
    const redis = await connect();
    const ttlMs = 60_000;
    const inbox = redisInboxStore({ redis, prefix, ttlMs });
    const user = { companyId: "acme", userId: `user-${randomUUID()}` };
    const keys = inboxKeys(prefix, user.companyId, user.userId);
    await inbox.append(user, "expense:approved", { plain: true });
    expect(await redis.exists(keys.idempotency, keys.idempotencyOrder)).toBe(0);

    const { message } = await inbox.append(user, "expense:approved", { n: 1 }, { idempotencyKey: "expense 42: approved" });
    expect(await redis.hgetall(keys.idempotency)).toEqual({ "expense 42: approved": message.id });
    expect(await redis.lrange(keys.idempotencyOrder, 0, -1)).toEqual([`${message.id} expense 42: approved`]);
    for (const key of [keys.idempotency, keys.idempotencyOrder]) {
      const pttl = await redis.pttl(key);
      expect(pttl).toBeGreaterThan(ttlMs - 5_000);
      expect(pttl).toBeLessThanOrEqual(ttlMs + 1_000);
    }
  });

  test("a repeat is answered under maxmemory, since it writes nothing; a new key there is refused with nothing recorded", async () => {
    const redis = await connect();
    const inbox = redisInboxStore({ redis, prefix });
    const user = { companyId: "acme", userId: `user-${randomUUID()}` };
    const keys = inboxKeys(prefix, user.companyId, user.userId);
    const { message } = await inbox.append(user, "expense:approved", { n: 1 }, { idempotencyKey: "k-1" });
    const used = Number(/used_memory:(\d+)/.exec(await redis.info("memory"))![1]);
    await redis.config("SET", "maxmemory-policy", "noeviction");
    await redis.config("SET", "maxmemory", String(Math.max(used - 1024 * 1024, 1024 * 1024)));
    try {
      expect(await inbox.append(user, "expense:approved", { n: 2 }, { idempotencyKey: "k-1" })).toEqual({ message, duplicate: true });
      await expect(inbox.append(user, "expense:approved", { n: 3 }, { idempotencyKey: "k-2" })).rejects.toThrow(/OOM/);
    } finally {
      await redis.config("SET", "maxmemory", "0");
    }
    expect(await redis.hkeys(keys.idempotency)).toEqual(["k-1"]);
    expect(await redis.xlen(keys.log)).toBe(1);
  });
});
