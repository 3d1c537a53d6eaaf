import { randomUUID } from "node:crypto";
import type { DocumentUpdated } from "@truss/protocol";
import { connect, type TrussClient } from "@truss/client";
import { redisStores } from "@truss/redis";
import {
  requireRedisOrSkip,
  signToken,
  sleep,
  startRedisServer,
  startTcpProxy,
  waitFor,
  withTimeout,
  type RedisServer,
  type TestServer,
} from "@truss/test-utils";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { startLostReplyNode } from "./support/lost-replies.js";

/** Small, so a lost reply turns into STORE_UNAVAILABLE quickly. */
const COMMAND_TIMEOUT_MS = 500;
/** How long a case waits to be sure nothing more arrives. */
const QUIET_MS = 300;
const TYPE = "site-report";
const ID = "riverside-0612";

/**
 * A document write from `@truss/client` whose commit reply from a real
 * redis-server was lost: the compare-and-set landed, the engine heard
 * nothing and answered STORE_UNAVAILABLE, so nobody was told of the new
 * version. The client's outbox sends the write again with its mutation id;
 * the answer is the version that landed (nothing is committed twice), and
 * the other devices must hear of it then, not at the document's next commit.
 *
 * The engine's store client reaches Redis through a TCP proxy that drops
 * what Redis sends; the adapter's pub/sub goes straight to Redis.
 */
describe.runIf(requireRedisOrSkip("@truss/redis document mutation fault tests"))("a document commit whose reply from Redis was lost", () => {
  let redis: RedisServer;
  const closers: Array<() => unknown> = [];

  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await withTimeout(Promise.resolve(close()), 10_000);
  });
  afterAll(async () => {
    await redis?.stop();
  });

  function device(node: TestServer, companyId: string, userId: string): TrussClient {
    const client = connect(node.url, {
      token: signToken({ userId, companyId }),
      deviceId: `${userId}-phone`,
      reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
      socketOptions: { transports: ["websocket"] },
    });
    closers.push(() => client.close());
    return client;
  }

  test("the outbox's resend answers with the version that landed, and the watching device hears of it once", async () => {
    const prefix = `truss-docfault-${randomUUID()}`;
    const companyId = `acme-${randomUUID()}`;
    const proxy = await startTcpProxy(redis.port);
    closers.push(() => proxy.close());
    const node = await startLostReplyNode({ redisPort: redis.port, storePort: proxy.port, prefix, commandTimeoutMs: COMMAND_TIMEOUT_MS, closers });
    // Before the fault, so Redis has the commit script cached (a lost NOSCRIPT reply would mean nothing was committed).
    await node.engine.documents.update(companyId, TYPE, ID, { baseVersion: 0, changes: { weather: "dry", crew: 4 } });
    await node.engine.documents.update(companyId, TYPE, ID, { baseVersion: 1, changes: { weather: "dry" } });

    const watcher = device(node, companyId, "bob");
    const heard: DocumentUpdated[] = [];
    watcher.documents.onUpdated((update) => void heard.push(update));
    expect(await watcher.documents.watch(TYPE, ID)).toMatchObject({ version: 2 });
    const writer = device(node, companyId, "ann");
    expect(await writer.documents.get(TYPE, ID)).toMatchObject({ version: 2 });

    // The update's read is answered; its compare-and-set, the first command that carries the mutation id, is not.
    const mutationId = `m-${randomUUID()}`;
    proxy.dropDownstreamAfter(mutationId);
    const written = writer.documents.update(TYPE, ID, { crew: 7 }, { mutationId });
    // Awaited below; a case that fails before then closes the client, which rejects it.
    written.catch(() => undefined);
    // The commit landed while the engine heard nothing back.
    const direct = new Redis(redis.port, { host: "127.0.0.1" });
    closers.push(() => direct.disconnect());
    const stored = redisStores(direct, { prefix }).documents!;
    await waitFor(async () => (await stored.get({ companyId, type: TYPE, id: ID }))?.version === 3, { timeoutMs: 5_000, message: "the commit in Redis" });
    await sleep(COMMAND_TIMEOUT_MS + QUIET_MS);
    expect(heard, "nothing is announced for a commit that was not confirmed").toEqual([]);
    expect(await node.engine.metrics()).toMatch(/^truss_store_errors_total\{store="documents"\} [1-9]/m);

    // The connection missed replies, so only a new one can go on.
    expect(proxy.bytesDropped).toBeGreaterThan(0);
    proxy.cut();
    proxy.resumeDownstream();
    const outcome = await withTimeout(written, 15_000);
    expect(outcome).toMatchObject({ status: "applied", duplicate: true, document: { version: 3, data: { weather: "dry", crew: 7 } } });
    await waitFor(() => heard.length >= 1, { timeoutMs: 5_000, message: "version 3 on the watching device" });
    await sleep(QUIET_MS);
    expect(heard).toEqual([{ type: TYPE, id: ID, version: 3, data: { weather: "dry", crew: 7 }, updatedBy: "ann", changedFields: ["crew"] }]);
    expect(watcher.documents.snapshot(TYPE, ID)).toMatchObject({ version: 3, data: { crew: 7 } });
    expect((await stored.history({ companyId, type: TYPE, id: ID }, 10)).map((version) => version.version)).toEqual([3, 2, 1]);
  });
});
