import { randomUUID } from "node:crypto";
import { redisAdapter, redisStores, type RedisAdapterOptions } from "@truss/redis";
import {
  connectAs,
  requireRedisOrSkip,
  startRedisServer,
  startTestServer,
  waitFor,
  type RedisServer,
  type TestServer,
} from "@truss/test-utils";
import { Cluster, Redis } from "ioredis";
import type { Socket as ClientSocket } from "socket.io-client";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";

/**
 * The adapter carries a company broadcast from the node that emits it to a
 * client connected to another node, over classic and over sharded pub/sub.
 */
describe.runIf(requireRedisOrSkip("@truss/redis adapter tests"))("redisAdapter", () => {
  let server: RedisServer;
  const cleanups: (() => Promise<unknown> | void)[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  afterAll(async () => {
    await server?.stop();
  });

  /** A client with the README's options: fail-fast for stores, ioredis defaults for pub/sub. */
  const client = async (failFast: boolean) => {
    const redis = new Redis(server.url, {
      lazyConnect: true,
      ...(failFast ? { enableOfflineQueue: false, maxRetriesPerRequest: 1 } : {}),
    });
    await redis.connect();
    cleanups.push(() => redis.quit());
    return redis;
  };

  /** One engine node with its own three connections: stores, publisher, subscriber. */
  const startNode = async (prefix: string, options: RedisAdapterOptions): Promise<TestServer> => {
    const [stores, pub, sub] = await Promise.all([client(true), client(false), client(false)]);
    const node = await startTestServer({
      ...redisStores(stores, { prefix }),
      adapter: redisAdapter(pub, sub, { ...options, ...(options.sharded ? { channelPrefix: prefix } : { key: prefix }) }),
    });
    cleanups.push(() => node.close());
    return node;
  };

  const connect = async (node: TestServer, companyId: string): Promise<ClientSocket> => {
    const socket = await connectAs(node.url, { userId: `user-${randomUUID()}`, companyId });
    cleanups.push(() => void socket.close());
    return socket;
  };

  test.each([
    { name: "classic pub/sub", options: {} satisfies RedisAdapterOptions },
    { name: "sharded pub/sub", options: { sharded: true } satisfies RedisAdapterOptions },
  ])("$name: a company broadcast on one node reaches a client on the other", async ({ options }) => {
    const prefix = `truss-adapter-${randomUUID()}`;
    const [nodeA, nodeB] = [await startNode(prefix, options), await startNode(prefix, options)];
    const companyId = `company-${randomUUID()}`;
    const onB = await connect(nodeB, companyId);
    const elsewhere = await connect(nodeB, `company-${randomUUID()}`);
    const received: unknown[] = [];
    const leaked: unknown[] = [];
    onB.on("project:updated", (payload: unknown) => received.push(payload));
    elsewhere.on("project:updated", (payload: unknown) => leaked.push(payload));

    // Subscriptions propagate asynchronously; re-emit until the first arrives.
    await waitFor(
      () => {
        nodeA.engine.toCompany(companyId).emit("project:updated", { id: "p1" });
        return received.length > 0;
      },
      { intervalMs: 50, message: "the broadcast from node A on node B" },
    );
    expect(received[0]).toEqual({ id: "p1" });
    expect(leaked).toEqual([]);

    // The mode asked for is the one in use: sharded channels only for sharded.
    const observer = await client(true);
    const channels = async (kind: "CHANNELS" | "SHARDCHANNELS") =>
      (await observer.call("PUBSUB", kind, `${prefix}*`)) as string[];
    const [classic, sharded] = [await channels("CHANNELS"), await channels("SHARDCHANNELS")];
    expect(options.sharded ? sharded : classic).not.toEqual([]);
    expect(options.sharded ? classic : sharded).toEqual([]);
  });

  test("the sharded adapter refuses a Cluster subscriber without shardedSubscribers", () => {
    // lazyConnect: the check happens before anything is sent, so no cluster is needed.
    const cluster = new Cluster([{ host: "127.0.0.1", port: server.port }], { lazyConnect: true });
    cleanups.push(() => cluster.disconnect());
    expect(() => redisAdapter(cluster, cluster, { sharded: true })).toThrow(/shardedSubscribers: true/);
  });
});
