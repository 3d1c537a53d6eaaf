import { randomUUID } from "node:crypto";
import type { InboxMessage } from "@truss/protocol";
import { redisInboxStore } from "@truss/redis";
import {
  collect,
  createClient,
  open,
  requireRedisOrSkip,
  sleep,
  startRedisServer,
  startTcpProxy,
  waitFor,
  withTimeout,
  type RedisServer,
  type TcpProxy,
  type TestServer,
} from "@truss/test-utils";
import { Redis } from "ioredis";
import type { Socket as ClientSocket } from "socket.io-client";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { inboxKeys } from "../src/keys.js";
import { startLostReplyNode, type LostReplyNode } from "./support/lost-replies.js";

/** Small, so a lost reply turns into STORE_UNAVAILABLE quickly. */
const COMMAND_TIMEOUT_MS = 500;
/** How long a case waits to be sure nothing more arrives. */
const QUIET_MS = 300;

/**
 * `toUser(...).emit(..., { idempotencyKey })` against a real redis-server
 * whose replies are lost on the way back: the append lands in Redis, the
 * engine hears nothing and rejects with STORE_UNAVAILABLE, and the retry
 * with the same key must neither store the message twice nor leave the
 * devices online without it.
 *
 * The engine's store client reaches Redis through a TCP proxy that can drop
 * or hold back what Redis sends; the adapter's pub/sub and the checks
 * (a second, direct ioredis client) go straight to Redis.
 */
describe.runIf(requireRedisOrSkip("@truss/redis idempotency fault tests"))("a toUser whose reply from Redis was lost", () => {
  let redis: RedisServer;
  let direct: Redis;
  const closers: Array<() => unknown> = [];

  beforeAll(async () => {
    redis = await startRedisServer();
    direct = new Redis(redis.port, { host: "127.0.0.1", lazyConnect: true });
    await direct.connect();
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await withTimeout(Promise.resolve(close()), 10_000);
  });
  afterAll(async () => {
    direct?.disconnect();
    await redis?.stop();
  });

  /** An engine node whose store client connects to `storePort` (the proxy, or Redis itself). */
  const startNode = (prefix: string, storePort: number) =>
    startLostReplyNode({ redisPort: redis.port, storePort, prefix, commandTimeoutMs: COMMAND_TIMEOUT_MS, closers });

  async function startProxy(): Promise<TcpProxy> {
    const proxy = await startTcpProxy(redis.port);
    closers.push(() => proxy.close());
    return proxy;
  }

  async function device(node: TestServer, claims: { companyId: string; userId: string; deviceId: string }) {
    const socket: ClientSocket = createClient(node.url, claims);
    closers.push(() => socket.close());
    const received = collect<InboxMessage>(socket, "inbox:message");
    await open(socket);
    return received;
  }

  /** What Redis holds for the user, read past the engine. */
  async function stored(prefix: string, user: { companyId: string; userId: string }) {
    const entries = await direct.xrange(inboxKeys(prefix, user.companyId, user.userId).log, "-", "+");
    const messages = await redisInboxStore({ redis: direct, prefix }).read(user, null, 100);
    return { entries: entries.length, messages };
  }

  /**
   * A message before the fault, once every device has it: then each
   * device's replay on connect is over (a live push waits for it), and Redis
   * has the append script cached (a cold `EVALSHA` is refused with NOSCRIPT
   * and only then sent as `EVAL`; a lost NOSCRIPT reply would mean nothing
   * was appended at all).
   */
  async function warmUp(node: TestServer, user: { companyId: string; userId: string }, devices: InboxMessage[][]) {
    const message = await node.engine.toUser(user.companyId, user.userId).emit("expense:submitted", { expenseId: "e-42" });
    await waitFor(() => devices.every((received) => received.length === 1), { message: "the message before the fault on every device" });
    for (const received of devices) expect(received).toEqual([message]);
    return message;
  }

  /** Sends through `node`, whose store reply the caller arranged to lose, and checks that the append landed anyway. */
  async function sendUnconfirmed(node: TestServer, prefix: string, user: { companyId: string; userId: string }, key: string) {
    const startedAt = Date.now();
    const failure = await node.engine
      .toUser(user.companyId, user.userId)
      .emit("expense:approved", { expenseId: "e-42", attempt: 1 }, { idempotencyKey: key })
      .then(
        () => null,
        (error: unknown) => error,
      );
    expect(failure).toMatchObject({ code: "STORE_UNAVAILABLE" });
    expect(Date.now() - startedAt).toBeLessThan(COMMAND_TIMEOUT_MS + 2_000);
    // The reply was lost, not the request: Redis stored the message.
    expect((await stored(prefix, user)).entries).toBe(2);
  }

  /** Two ways a reply goes missing, and how the network comes back from each. */
  const lostReplies: Array<{
    name: string;
    lose(proxy: TcpProxy): void;
    restore(proxy: TcpProxy, node: LostReplyNode): Promise<void>;
  }> = [
    {
      name: "the connection breaks after Redis executed the append (reply dropped, then cut)",
      lose: (proxy) => proxy.dropDownstream(),
      async restore(proxy, node) {
        expect(proxy.bytesDropped).toBeGreaterThan(0);
        // The client missed a reply, so the connection is out of step: only a new one can go on.
        proxy.cut();
        proxy.resumeDownstream();
        await waitFor(() => node.store.status === "ready", { timeoutMs: 5_000, message: "the store client to reconnect" });
      },
    },
    {
      name: "the reply arrives after the engine gave up (held back, then released)",
      lose: (proxy) => proxy.stallDownstream(),
      async restore(proxy) {
        proxy.resumeDownstream();
      },
    },
  ];

  for (const { name, lose, restore } of lostReplies) {
    test(`${name}: the retry stores nothing new and the connected device gets the message once`, async () => {
      const prefix = `truss-idem-${randomUUID()}`;
      const proxy = await startProxy();
      const node = await startNode(prefix, proxy.port);
      const user = { companyId: `acme-${randomUUID()}`, userId: "ann" };
      const key = `expense-42:approved:${randomUUID()}`;
      const received = await device(node, { ...user, deviceId: "phone" });
      const before = await warmUp(node, user, [received]);

      lose(proxy);
      await sendUnconfirmed(node, prefix, user, key);
      await sleep(QUIET_MS);
      expect(received, "nothing is pushed for an append that was not confirmed").toEqual([before]);

      await restore(proxy, node);
      const retried = await node.engine
        .toUser(user.companyId, user.userId)
        .emit("expense:approved", { expenseId: "e-42", attempt: 2 }, { idempotencyKey: key });
      // The first message, as Redis stored it: the retry's own data is not stored.
      expect(retried.data).toEqual({ expenseId: "e-42", attempt: 1 });
      const inRedis = await stored(prefix, user);
      expect(inRedis.entries).toBe(2);
      expect(inRedis.messages).toEqual([before, retried]);

      await waitFor(() => received.length >= 2, { timeoutMs: 5_000, message: "the retried message on the phone" });
      await sleep(QUIET_MS);
      expect(received).toEqual([before, retried]);
      expect(await node.engine.metrics()).toMatch(/^truss_inbox_duplicates_total 1$/m);
      expect(await node.engine.metrics()).toMatch(/^truss_store_errors_total\{store="inbox"\} 1$/m);
    });
  }

  test("a retry on another node reaches the devices on both nodes once; a further repeat reaches nobody", async () => {
    const prefix = `truss-idem-${randomUUID()}`;
    const proxy = await startProxy();
    const nodeA = await startNode(prefix, proxy.port);
    const nodeB = await startNode(prefix, redis.port);
    await waitFor(async () => (await nodeA.engine.io!.of("/").adapter.serverCount()) >= 2, { message: "both adapters subscribed" });
    const user = { companyId: `acme-${randomUUID()}`, userId: "ann" };
    const key = `expense-42:approved:${randomUUID()}`;
    const onA = await device(nodeA, { ...user, deviceId: "phone" });
    const onB = await device(nodeB, { ...user, deviceId: "laptop" });
    const before = await warmUp(nodeA, user, [onA, onB]);

    proxy.dropDownstream();
    await sendUnconfirmed(nodeA, prefix, user, key);
    proxy.cut();
    proxy.resumeDownstream();

    const retried = await nodeB.engine
      .toUser(user.companyId, user.userId)
      .emit("expense:approved", { expenseId: "e-42", attempt: 2 }, { idempotencyKey: key });
    await waitFor(() => onA.length >= 2 && onB.length >= 2, { timeoutMs: 5_000, message: "the retried message on both devices" });
    await waitFor(() => nodeA.store.status === "ready", { timeoutMs: 5_000, message: "node A's store client to reconnect" });
    // Once on each node's devices, whichever node repeats it.
    for (const node of [nodeA, nodeB]) {
      const repeat = await node.engine
        .toUser(user.companyId, user.userId)
        .emit("expense:approved", { expenseId: "e-42", attempt: 3 }, { idempotencyKey: key });
      expect(repeat).toEqual(retried);
    }
    await sleep(QUIET_MS);
    expect(onA).toEqual([before, retried]);
    expect(onB).toEqual([before, retried]);
    expect((await stored(prefix, user)).messages).toEqual([before, retried]);
  });
});
