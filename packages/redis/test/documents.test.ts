import { randomUUID } from "node:crypto";
import type { DocumentKey } from "@truss/core";
import { redisDocumentStore } from "@truss/redis";
import { requireRedisOrSkip, startRedisServer, type RedisServer } from "@truss/test-utils";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { documentKeys } from "../src/keys.js";

/** How the history's byte cap and the mutation records are kept in Redis, which the conformance suite cannot see. */
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

  test("maxMutations, maxMutationWriters and mutationTtlMs must be positive integers", () => {
    expect(() => redisDocumentStore({ redis, prefix, maxMutations: 0 })).toThrow(RangeError);
    expect(() => redisDocumentStore({ redis, prefix, maxMutationWriters: 0 })).toThrow(RangeError);
    expect(() => redisDocumentStore({ redis, prefix, mutationTtlMs: 1.5 })).toThrow(RangeError);
  });

  test("a document's mutation keys share its hash tag", () => {
    const keys = documentKeys(prefix, { companyId: "a:b{c}", type: "d}e", id: "f" });
    const tag = keys.latest;
    expect(tag).toMatch(/^\{[^{}]+\}$/);
    for (const name of ["history", "historyBytes", "mutations", "mutationTimes", "mutationLog", "mutationWriters", "mutationHorizons"] as const) {
      expect(keys[name].startsWith(`${tag}:`)).toBe(true);
    }
  });

  test("mutations are kept as id → version and per-writer log members; a tie within a millisecond forgets the oldest commit first", async () => {
    const at = 1_700_000_000_000;
    const store = redisDocumentStore({ redis, prefix, maxMutations: 2, now: () => at });
    const key = freshKey();
    const keys = documentKeys(prefix, key);
    // Ids that sort the other way round from their commits, and contain ':'; a writer whose name contains ':' too.
    const writer = "u:1";
    const mutations = ["z:1", "y:2", "x:3"].map((id) => ({ id: `${id}:${randomUUID()}`, writer, madeAt: at }));
    for (const [index, mutation] of mutations.entries()) {
      expect((await store.compareAndSet(key, index, { revision: index + 1 }, writer, mutation)).ok).toBe(true);
    }
    const [first, second, third] = mutations as [(typeof mutations)[0], (typeof mutations)[0], (typeof mutations)[0]];
    expect(await redis.hgetall(keys.mutations)).toEqual({ [second.id]: "2", [third.id]: "3" });
    expect(await redis.zrange(keys.mutationLog, 0, -1)).toEqual([
      `3:u:1:000${at}:0000000000000002:${second.id}`,
      `3:u:1:000${at}:0000000000000003:${third.id}`,
    ]);
    expect(await redis.zrange(keys.mutationWriters, 0, -1, "WITHSCORES")).toEqual([writer, String(at)]);
    expect(await redis.zrange(keys.mutationHorizons, 0, -1, "WITHSCORES")).toEqual([writer, String(at)]);
    expect(await redis.hget(keys.latest, "forgotten")).toBeNull();
    expect(await redis.exists(keys.mutationTimes)).toBe(0);
    expect(await store.mutation(key, first)).toEqual({ state: "expired" });
    expect(await store.mutation(key, second)).toEqual({ state: "committed", version: 2 });
    expect(await store.mutation(key, { id: "later", writer, madeAt: at + 1 })).toEqual({ state: "new" });
    expect(await store.mutation(key, { id: "other", writer: "u:2", madeAt: at - 1 })).toEqual({ state: "new" });
  });

  test("records from before they were kept per writer are still found, and forgotten past the TTL", async () => {
    let at = 1_700_000_000_000;
    const store = redisDocumentStore({ redis, prefix, mutationTtlMs: 1_000, now: () => at });
    const key = freshKey();
    const keys = documentKeys(prefix, key);
    expect((await store.compareAndSet(key, 0, { revision: 1 }, "u-1")).ok).toBe(true);
    // As the store of the last release left them: one hash, one timed ZSET, the document's `forgotten`.
    await redis.hset(keys.mutations, "legacy", "1");
    await redis.zadd(keys.mutationTimes, at, "0000000000000001:legacy");
    await redis.hset(keys.latest, "forgotten", String(at - 10));
    expect(await store.mutation(key, { id: "legacy", writer: "u-1", madeAt: at - 500 })).toEqual({ state: "committed", version: 1 });
    expect(await store.mutation(key, { id: "pushed-out", writer: "u-2", madeAt: at - 20 })).toEqual({ state: "expired" });
    at += 1_001;
    expect((await store.compareAndSet(key, 1, { revision: 2 }, "u-1", { id: "next", writer: "u-1", madeAt: at })).ok).toBe(true);
    expect(await redis.hgetall(keys.mutations)).toEqual({ next: "2" });
    expect(await redis.exists(keys.mutationTimes)).toBe(0);
  });

  test("records past mutationTtlMs are forgotten on the next commit without moving the cap's forgotten time", async () => {
    let at = 1_700_000_000_000;
    const store = redisDocumentStore({ redis, prefix, mutationTtlMs: 1_000, now: () => at });
    const key = freshKey();
    const keys = documentKeys(prefix, key);
    const old = { id: "old", writer: "u-1", madeAt: at };
    expect((await store.compareAndSet(key, 0, { revision: 1 }, "u-1", old)).ok).toBe(true);
    at += 1_000;
    // Exactly at the TTL the record is kept: only those older than now - mutationTtlMs go.
    expect((await store.compareAndSet(key, 1, { revision: 2 }, "u-1", { id: "middle", writer: "u-1", madeAt: at })).ok).toBe(true);
    expect(await redis.hgetall(keys.mutations)).toEqual({ old: "1", middle: "2" });
    at += 1;
    expect((await store.compareAndSet(key, 2, { revision: 3 }, "u-1", { id: "new", writer: "u-1", madeAt: at })).ok).toBe(true);
    expect(await redis.hgetall(keys.mutations)).toEqual({ middle: "2", new: "3" });
    expect(await redis.zcard(keys.mutationLog)).toBe(2);
    expect(await redis.hget(keys.latest, "forgotten")).toBeNull();
    expect(await store.mutation(key, old)).toEqual({ state: "expired" });
    expect(await store.compareAndSet(key, 3, { revision: 4 }, "u-1", old)).toMatchObject({ ok: false, mutation: { state: "expired" } });
  });

  test("a commit without a mutation touches no mutation key", async () => {
    const store = redisDocumentStore({ redis, prefix });
    const key = freshKey();
    const keys = documentKeys(prefix, key);
    await store.compareAndSet(key, 0, { revision: 1 }, "u-1");
    expect(await redis.exists(keys.mutations, keys.mutationTimes, keys.mutationLog, keys.mutationWriters, keys.mutationHorizons)).toBe(0);
    expect((await redis.hkeys(keys.latest)).sort()).toEqual(["document", "version"]);
  });

  test("an empty mutation id is refused with nothing written", async () => {
    const store = redisDocumentStore({ redis, prefix });
    const key = freshKey();
    await expect(store.compareAndSet(key, 0, { revision: 1 }, "u-1", { id: "", writer: "u-1", madeAt: Date.now() })).rejects.toThrow(TypeError);
    expect(await store.get(key)).toBeNull();
  });
});
