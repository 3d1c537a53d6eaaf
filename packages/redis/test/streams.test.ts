import { randomUUID } from "node:crypto";
import { streamStoreSuite } from "@truss/conformance";
import { redisStreamStore } from "@truss/redis";
import { requireRedisOrSkip, sleep, startRedisServer, waitFor, type RedisServer } from "@truss/test-utils";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { emptyStreamsKey, streamKeys } from "../src/streams.js";

/** What Redis Cluster hashes: the text between the first `{` and the next `}`. */
function hashTag(key: string): string {
  const open = key.indexOf("{");
  const close = key.indexOf("}", open + 1);
  return open >= 0 && close > open + 1 ? key.slice(open + 1, close) : key;
}

describe.runIf(requireRedisOrSkip("@truss/redis stream store tests"))("redisStreamStore on redis-server", () => {
  let server: RedisServer;
  const prefix = `truss-streams-${randomUUID()}`;

  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  // The options the README recommends: fail fast instead of queueing.
  const connect = async () => {
    const client = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true });
    client.on("error", () => undefined);
    await client.connect();
    return client;
  };

  describe("conformance", () => {
    const clients = new Map<object, Redis>();
    streamStoreSuite(
      test,
      async (options) => {
        const redis = await connect();
        const store = redisStreamStore({ redis, prefix, ...options });
        clients.set(store, redis);
        return store;
      },
      {
        prefix: "redisStreamStore (redis-server)",
        sharedBackend: true,
        // A Redis restarted without persistence has lost every stream; the store's client reconnects.
        async restartEmpty(store) {
          await server.restart();
          await waitFor(() => clients.get(store)?.status === "ready", { message: "ioredis to reconnect" });
          return store;
        },
        async teardown(store) {
          await clients.get(store)?.quit();
          clients.delete(store);
        },
      },
    );
  });

  describe("what the suite cannot see", () => {
    const clients: Redis[] = [];
    const client = async () => {
      const redis = await connect();
      clients.push(redis);
      return redis;
    };
    const freshKey = () => ({ companyId: `acme:{${randomUUID()}}`, stream: "topic:project:{1}" });

    afterEach(() => {
      for (const redis of clients.splice(0)) redis.disconnect();
    });

    test("a stream is a hash with its epoch and top and a list of entries, under one hash tag", async () => {
      const redis = await client();
      const key = freshKey();
      const store = redisStreamStore({ redis, prefix });
      const { epoch, entry } = await store.append(key, "project:updated", { budget: 12 });
      const keys = streamKeys(prefix, key);
      expect(hashTag(keys.meta)).toBe(hashTag(keys.log));
      expect(await redis.hgetall(keys.meta)).toEqual({ epoch, top: "1", trimmed: "0", expired: "0" });
      expect(await redis.lrange(keys.log, 0, -1)).toEqual([`${entry.ts},["project:updated",{"budget":12}]`]);
    });

    test("an idempotency key is a field of a hash and an element of a list under the stream's hash tag, and expires with the stream", async () => {
      const redis = await client();
      const key = freshKey();
      const store = redisStreamStore({ redis, prefix, ttlMs: 60_000, idleMs: 60_000 });
      await store.append(key, "project:updated", { budget: 1 });
      const { entry } = await store.append(key, "project:updated", { budget: 12 }, { idempotencyKey: "row 7: {x}" });
      const keys = streamKeys(prefix, key);
      expect(new Set(Object.values(keys).map(hashTag)).size).toBe(1);
      expect(await redis.hgetall(keys.idempotency)).toEqual({ "row 7: {x}": `2 ${entry.ts}` });
      expect(await redis.lrange(keys.idempotencyOrder, 0, -1)).toEqual([`2 ${entry.ts} row 7: {x}`]);
      for (const name of [keys.idempotency, keys.idempotencyOrder]) {
        const ttl = await redis.pttl(name);
        expect(ttl).toBeGreaterThan(100_000);
        expect(ttl).toBeLessThanOrEqual(120_000);
      }
    });

    test("a stream that starts a new epoch forgets its idempotency keys: they named offsets of the old one", async () => {
      const redis = await client();
      const store = redisStreamStore({ redis, prefix });
      const key = freshKey();
      const first = await store.append(key, "e", 1, { idempotencyKey: "row-1" });
      await store.append(key, "e", 2);
      expect(await store.append(key, "e", 1, { idempotencyKey: "row-1" })).toMatchObject({ duplicate: true, entry: { offset: 1 } });
      await redis.del(streamKeys(prefix, key).log);
      const again = await store.append(key, "e", 1, { idempotencyKey: "row-1" });
      expect(again).toMatchObject({ duplicate: false, entry: { offset: 1, data: 1 } });
      expect(again.epoch).not.toBe(first.epoch);
      expect(await redis.hgetall(streamKeys(prefix, key).idempotency)).toEqual({ "row-1": `1 ${again.entry.ts}` });
    });

    test("a company holds at most maxEmptyStreamsPerCompany streams that keep no entry: past it the least recently read are deleted", async () => {
      const redis = await client();
      const store = redisStreamStore({ redis, prefix, maxEmptyStreamsPerCompany: 5 });
      const companyId = `acme-${randomUUID()}`;
      const topic = (index: number) => ({ companyId, stream: `topic:project:${String(index).padStart(3, "0")}` });
      const history = await store.append(topic(0), "e", 1);
      const epochs: string[] = [];
      for (let index = 1; index <= 50; index++) epochs.push((await store.read(topic(index), 0, 0)).epoch);
      // The bound is kept in the background, after each read has answered.
      const held = async () => {
        const kept = [];
        for (let index = 1; index <= 50; index++) if ((await redis.exists(streamKeys(prefix, topic(index)).meta)) === 1) kept.push(index);
        return kept;
      };
      await waitFor(async () => (await held()).length === 5, { message: "the streams past the bound deleted" });
      expect(await held()).toEqual([46, 47, 48, 49, 50]);
      expect(await redis.zcard(emptyStreamsKey(prefix, companyId))).toBe(5);
      // The ones held keep the epoch their readers were told, for the next append too; a stream with entries is never deleted.
      expect((await store.append(topic(50), "e", 1)).epoch).toBe(epochs[49]);
      expect(await store.read(topic(0), 0, 10)).toMatchObject({ epoch: history.epoch, top: 1, entries: [{ offset: 1 }] });
      // One deleted starts a new epoch, which a device holding the old one sees as EPOCH_CHANGED.
      expect((await store.read(topic(1), 0, 0)).epoch).not.toBe(epochs[0]);
      expect(() => redisStreamStore({ redis, prefix, maxEmptyStreamsPerCompany: 0 })).toThrow(RangeError);
    });

    test("quiet streams read all at once still leave exactly maxEmptyStreamsPerCompany held: each read's note and trim is one step", async () => {
      const redis = await client();
      const store = redisStreamStore({ redis, prefix, maxEmptyStreamsPerCompany: 5 });
      const companyId = `acme-${randomUUID()}`;
      const topics = Array.from({ length: 40 }, (_, index) => ({ companyId, stream: `topic:site:${index}` }));
      await Promise.all(topics.map((topic) => store.read(topic, 0, 0)));
      const held = async () => (await Promise.all(topics.map((topic) => redis.exists(streamKeys(prefix, topic).meta)))).filter((exists) => exists === 1).length;
      await waitFor(async () => (await held()) <= 5, { message: "the streams past the bound deleted" });
      await sleep(100);
      expect(await held()).toBe(5);
      expect(await redis.zcard(emptyStreamsKey(prefix, companyId))).toBe(5);
    });

    test("the key layout keeps crafted company ids and stream names apart", () => {
      const confusable: [string, string][] = [
        ["a:b", "c"],
        ["a", "b:c"],
        ["a%3Ab", "c"],
        ["a{b}", "c"],
        ["a", "{b}c"],
        ["a/b", "c"],
        ["a", "b/c"],
        ["é", "c"],
        ["e\u0301", "c"],
        ["__proto__", "c"],
        ["a", "__proto__"],
        ["a", "topic:b:c"],
        ["a:topic", "b:c"],
      ];
      const tags = confusable.map(([companyId, stream]) => hashTag(streamKeys("truss", { companyId, stream }).meta));
      expect(new Set(tags).size).toBe(confusable.length);
      for (const tag of tags) expect(tag).toMatch(/^truss:stream:[^:{}]+:[^:{}]+$/);
    });

    test("a Redis restart that lost the data gives every stream a new epoch, read or appended first", async () => {
      const redis = await client();
      const store = redisStreamStore({ redis, prefix });
      const [readFirst, appendFirst] = [freshKey(), freshKey()];
      const before = [(await store.append(readFirst, "e", 1)).epoch, (await store.append(appendFirst, "e", 1)).epoch];
      await store.append(readFirst, "e", 2);

      await server.restart();
      await waitFor(() => redis.status === "ready", { message: "ioredis to reconnect" });

      const read = await store.read(readFirst, 2, 10);
      expect(read.epoch).not.toBe(before[0]);
      expect(read).toEqual({ epoch: read.epoch, top: 0, entries: [], gap: null });
      expect(await store.append(readFirst, "e", 3)).toMatchObject({ epoch: read.epoch, entry: { offset: 1 } });
      const appended = await store.append(appendFirst, "e", 2);
      expect(appended.epoch).not.toBe(before[1]);
      expect(appended.entry.offset).toBe(1);
    });

    test("a stream whose entries were lost outside the store (evicted, deleted) starts a new epoch", async () => {
      const redis = await client();
      const store = redisStreamStore({ redis, prefix });
      const key = freshKey();
      const { epoch } = await store.append(key, "e", 1);
      await store.append(key, "e", 2);
      await redis.del(streamKeys(prefix, key).log);
      const read = await store.read(key, 0, 10);
      expect(read.epoch).not.toBe(epoch);
      expect(read.top).toBe(0);

      const other = freshKey();
      const first = await store.append(other, "e", 1);
      await redis.del(streamKeys(prefix, other).meta);
      const next = await store.append(other, "e", 2);
      expect(next.epoch).not.toBe(first.epoch);
      expect(next.entry.offset).toBe(1);
      expect((await store.read(other, 0, 10)).entries.map((entry) => entry.data)).toEqual([2]);
    });

    test("a stream's keys expire ttlMs + idleMs after its last append or read, and it then starts a new epoch", async () => {
      const redis = await client();
      const store = redisStreamStore({ redis, prefix, ttlMs: 200, idleMs: 300 });
      const key = freshKey();
      const keys = streamKeys(prefix, key);
      const { epoch } = await store.append(key, "e", 1);
      for (const name of [keys.meta, keys.log]) {
        const ttl = await redis.pttl(name);
        expect(ttl).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(500);
      }
      await sleep(300);
      // The read finds the entry expired but keeps the stream (and its epoch) for another 500 ms.
      expect(await store.read(key, 0, 10)).toEqual({ epoch, top: 1, entries: [], gap: "HISTORY_EXPIRED" });
      expect(await redis.pttl(keys.meta)).toBeGreaterThan(300);
      await waitFor(async () => (await redis.exists(keys.meta, keys.log)) === 0, {
        timeoutMs: 3000,
        message: "the stream's keys to expire",
      });
      const read = await store.read(key, 1, 10);
      expect(read.epoch).not.toBe(epoch);
      expect(read.top).toBe(0);
    });

    test("trim totals counted on one node are reported by every node, within about a second", async () => {
      const [nodeA, nodeB] = [
        redisStreamStore({ redis: await client(), prefix, size: 2 }),
        redisStreamStore({ redis: await client(), prefix, size: 2 }),
      ];
      const before = await nodeB.trimmed();
      const key = freshKey();
      for (let index = 0; index < 5; index += 1) await nodeA.append(key, "crew:changed", { index });
      // Node A adds its counts to the shared hash in one script a second, not one per append.
      await expect.poll(async () => (await nodeB.trimmed()).trimmed - before.trimmed, { timeout: 3000, interval: 100 }).toBe(3);
      expect((await nodeB.trimmed()).expired).toBe(before.expired);
    });

    test("append rejects while Redis is down and works again once it is back", async () => {
      const redis = await client();
      const store = redisStreamStore({ redis, prefix });
      const key = freshKey();
      await server.stop();
      const startedAt = Date.now();
      await expect(store.append(key, "e", {})).rejects.toThrow();
      await expect(store.read(key, 0, 10)).rejects.toThrow();
      await expect(store.ping!()).rejects.toThrow();
      // Rejected, not queued until a reconnect: the engine must learn at once.
      expect(Date.now() - startedAt).toBeLessThan(1_000);

      await server.restart();
      await waitFor(() => redis.status === "ready", { message: "ioredis to reconnect" });
      const { epoch, entry } = await store.append(key, "e", {});
      expect(await store.read(key, 0, 10)).toEqual({ epoch, top: 1, entries: [entry], gap: null });
    });

    test("an entry without data reads back without data, and events keep any characters", async () => {
      const store = redisStreamStore({ redis: await client(), prefix });
      const key = freshKey();
      await store.append(key, "ping", undefined);
      await store.append(key, "a,b:\"c\"\n", null);
      const { entries } = await store.read(key, 0, 10);
      expect(entries.map(({ event, data }) => ({ event, data }))).toEqual([
        { event: "ping", data: undefined },
        { event: "a,b:\"c\"\n", data: null },
      ]);
    });

    test("bad offsets and options are refused before anything is sent", async () => {
      const redis = await client();
      const store = redisStreamStore({ redis, prefix });
      for (const after of [-1, 1.5, Number.NaN]) await expect(store.read(freshKey(), after, 10)).rejects.toThrow(TypeError);
      expect(() => redisStreamStore({ redis, size: 0 })).toThrow(RangeError);
      expect(() => redisStreamStore({ redis, ttlMs: 1.5 })).toThrow(RangeError);
      expect(() => redisStreamStore({ redis, idleMs: 0 })).toThrow(RangeError);
      expect(() => redisStreamStore({ redis, prefix: "app{1}" })).toThrow(TypeError);
    });

    test("a read asks for no more entries than the stream can hold", async () => {
      const store = redisStreamStore({ redis: await client(), prefix, size: 3 });
      const key = freshKey();
      for (let index = 0; index < 5; index += 1) await store.append(key, "e", index);
      const read = await store.read(key, 2, Number.POSITIVE_INFINITY);
      expect(read.entries.map((entry) => entry.offset)).toEqual([3, 4, 5]);
    });
  });
});
