import type { InboxMessage } from "@truss/protocol";
import { redisAdapter, redisStores } from "@truss/redis";
import {
  collect,
  createClient,
  open,
  request,
  requireRedisOrSkip,
  sleep,
  startRedisServer,
  startTcpProxy,
  startTestServer,
  waitFor,
  type RedisServer,
  type TcpProxy,
  type TestServer,
} from "@truss/test-utils";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { company } from "./support/nodes.js";

/**
 * Node B's adapter subscriber reaches Redis through a TCP proxy, so its
 * connection alone can be cut and its reconnection held: messages node A
 * relays meanwhile never reach node B over pub/sub. The engine must still
 * deliver every stored message to B's connected devices once B is
 * subscribed again, without the devices reconnecting. And a subscriber that
 * is still in its handshake when the adapter subscribes must end up
 * subscribed, not reconnected without its channels.
 */
describe.runIf(requireRedisOrSkip("@truss/redis resubscribe tests"))("after the adapter's subscriber comes back", () => {
  let redis: RedisServer;
  let proxy: TcpProxy;
  const closers: Array<() => unknown> = [];

  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  async function node(prefix: string, subPort: number): Promise<TestServer> {
    const store = new Redis(redis.port, { host: "127.0.0.1", enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    const pub = new Redis(redis.port, { host: "127.0.0.1" });
    // Reconnect quickly once the proxy lets the connection through again.
    const sub = new Redis(subPort, { host: "127.0.0.1", retryStrategy: () => 50 });
    for (const client of [store, pub, sub]) client.on("error", () => undefined);
    const server = await startTestServer({ ...redisStores(store, { prefix }), adapter: redisAdapter(pub, sub, { key: prefix }) });
    closers.push(() => [store, pub, sub].forEach((client) => client.disconnect()), () => server.close());
    return server;
  }

  test("a device on the node that was cut off gets every message stored meanwhile, in order, without reconnecting", async () => {
    proxy = await startTcpProxy(redis.port);
    closers.push(() => proxy.close());
    const prefix = `truss-resub-${company()}`;
    const a = await node(prefix, redis.port);
    const b = await node(prefix, proxy.port);
    const tenant = company();
    await waitFor(async () => (await b.engine.io!.of("/").adapter.serverCount()) >= 2, { message: "both adapters subscribed" });

    const phone = createClient(b.url, { userId: "ben", companyId: tenant, deviceId: "phone" });
    closers.push(() => phone.close());
    const received = collect<InboxMessage>(phone, "inbox:message");
    const disconnects = collect(phone, "disconnect");
    await open(phone);
    const before = await a.engine.toUser(tenant, "ben").emit("expense:approved", { n: 0 });
    await waitFor(() => received.length === 1, { message: "the live message before the cut" });
    // As @truss/client does: what the device has is acknowledged, so a catch-up starts after it.
    expect((await request(phone, "inbox:ack", { ids: [before.id] })).ok).toBe(true);

    proxy.hold();
    proxy.cut();
    const stored: string[] = [before.id];
    for (let n = 1; n <= 5; n++) stored.push((await a.engine.toUser(tenant, "ben").emit("expense:approved", { n })).id);
    await sleep(300);
    // The relays were published while B was not subscribed: pub/sub carried none of them.
    expect(received).toHaveLength(1);

    proxy.release();
    await waitFor(() => received.length >= stored.length, { timeoutMs: 10_000, message: "the catch-up after resubscribing" });
    expect(received.map((message) => message.id)).toEqual(stored);
    expect(disconnects).toEqual([]);
    expect(phone.connected).toBe(true);
  });

  test("a subscriber still in its connection handshake when the engine starts is subscribed once it is ready", async () => {
    const prefix = `truss-resub-${company()}`;
    const a = await node(prefix, redis.port);
    const store = new Redis(redis.port, { host: "127.0.0.1", enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    const pub = new Redis(redis.port, { host: "127.0.0.1" });
    const sub = pub.duplicate();
    const subEvents: string[] = [];
    for (const event of ["error", "close"]) sub.on(event, (error?: Error) => subEvents.push(`${event}${error ? `: ${error.message}` : ""}`));
    for (const client of [store, pub]) client.on("error", () => undefined);
    closers.push(() => [store, pub, sub].forEach((client) => client.disconnect()));
    // The moment ioredis has connected and not finished its handshake: the
    // adapter the engine creates subscribes right then, as an app that starts
    // its engine while Redis is still connecting would.
    const started = new Promise<TestServer>((resolve, reject) => {
      sub.once("connect", () => {
        expect(sub.status).toBe("connect");
        startTestServer({ ...redisStores(store, { prefix }), adapter: redisAdapter(pub, sub, { key: prefix }) }).then(resolve, reject);
      });
    });
    const b = await started;
    closers.push(() => b.close());
    await waitFor(async () => (await a.engine.io!.of("/").adapter.serverCount()) === 2, { message: "B's adapter subscribed" });

    const tenant = company();
    const phone = createClient(b.url, { userId: "ben", companyId: tenant, deviceId: "phone" });
    closers.push(() => phone.close());
    const heard = collect(phone, "project:updated");
    await open(phone);
    await a.engine.toCompany(tenant).emit("project:updated", { id: "tower-b" });
    await waitFor(() => heard.length === 1, { message: "A's broadcast on B" });
    // The subscription went out after the handshake, so ioredis never had to recover from it.
    expect(subEvents).toEqual([]);
  });
});
