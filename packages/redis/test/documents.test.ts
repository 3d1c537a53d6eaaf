import { randomUUID } from "node:crypto";
import type { DocumentKey } from "@truss/core";
import { redisDocumentStore } from "@truss/redis";
import { requireRedisOrSkip, startRedisServer, type RedisServer } from "@truss/test-utils";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { documentKeys } from "../src/keys.js";

/** How the history's byte cap is kept in Redis, which the conformance suite cannot see. */
describe.runIf(requireRedisOrSkip("@truss/redis document tests"))("redisDocumentStore on redis-server", () => {
  let server: RedisServer;
  let redis: Redis;
  const prefix = `truss-documents-${randomUUID()}`;
  const freshKey = (): DocumentKey => ({ companyId: `company:${randomUUID()}`, type: "project", id: "tower-b" });

  beforeAll(async () => {
    server = await startRedisServer();
    redis = new Redis(server.url, { enableOfflineQueue: false, lazyConnect: true });
    await redis.connect();
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  test("each history entry's size is the UTF-8 length of its data's JSON, kept in step with the history", async () => {
    const store = redisDocumentStore({ redis, prefix, maxHistory: 2 });
    const key = freshKey();
    const sizes = [{ name: "Tower B" }, { name: "Tour É" }, { name: "🏗" }].map((data) => Buffer.byteLength(JSON.stringify(data)));
    await store.compareAndSet(key, 0, { name: "Tower B" }, "u-1");
    await store.compareAndSet(key, 1, { name: "Tour É" }, "u-1");
    await store.compareAndSet(key, 2, { name: "🏗" }, "u-1");
    const keys = documentKeys(prefix, key);
    expect((await redis.lrange(keys.historyBytes, 0, -1)).map(Number)).toEqual([sizes[2], sizes[1]]);
    expect(await redis.llen(keys.history)).toBe(2);
  });

  test("a history written before sizes were kept is measured whole, then trimmed like any other", async () => {
    const key = freshKey();
    const keys = documentKeys(prefix, key);
    // Versions 1 to 3 as an earlier release stored them: no sizes list.
    const legacy = [1, 2, 3].map((version) =>
      JSON.stringify({ type: key.type, id: key.id, version, data: { padding: "x".repeat(400) }, updatedAt: Date.now(), updatedBy: null }),
    );
    await redis.hset(keys.latest, "version", 3, "document", legacy[2]!);
    await redis.lpush(keys.history, ...legacy);

    const store = redisDocumentStore({ redis, prefix, maxHistoryBytes: 1_000 });
    const fourth = await store.compareAndSet(key, 3, { padding: "y".repeat(400) }, "u-1");
    expect(fourth.ok).toBe(true);
    // Version 4 (about 400 bytes) and version 3 counted whole (about 500) fit; version 2 does not.
    expect((await store.history(key, 10)).map((version) => version.version)).toEqual([4, 3]);
    expect((await redis.lrange(keys.historyBytes, 0, -1)).map(Number)).toEqual([
      Buffer.byteLength(JSON.stringify({ padding: "y".repeat(400) })),
      Buffer.byteLength(legacy[2]!),
    ]);
  });

  test("data that is not a JSON object is refused with nothing written", async () => {
    const store = redisDocumentStore({ redis, prefix });
    const key = freshKey();
    await expect(store.compareAndSet(key, 0, [1, 2] as never, "u-1")).rejects.toThrow(TypeError);
    await expect(store.compareAndSet(key, 0, undefined as never, "u-1")).rejects.toThrow(TypeError);
    expect(await store.get(key)).toBeNull();
  });

  test("maxHistoryBytes must be a positive integer", () => {
    expect(() => redisDocumentStore({ redis, prefix, maxHistoryBytes: 0 })).toThrow(RangeError);
    expect(() => redisDocumentStore({ redis, prefix, maxHistoryBytes: 1.5 })).toThrow(RangeError);
  });
});
