import { randomUUID } from "node:crypto";
import type { UndeliveredClaim } from "@truss/core";
import { redisInboxStore } from "@truss/redis";
import { requireRedisOrSkip, startRedisServer, startTcpProxy, waitFor, type RedisServer, type TcpProxy } from "@truss/test-utils";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

/** Small, so a lost reply ends the append quickly. */
const COMMAND_TIMEOUT_MS = 500;

/**
 * An append with an undelivered call whose node goes silent once the append
 * went out: Redis executes it, the node never hears back (the proxy drops
 * every reply, as a node that died or lost its network would), and nothing
 * after the append runs. The call must still be claimed once due, by
 * another node: the index of users with due calls cannot depend on a step
 * after the append.
 */
describe.runIf(requireRedisOrSkip("@truss/redis undelivered-call fault tests"))("an append whose node went silent after sending it", () => {
  let redis: RedisServer;
  let proxy: TcpProxy;
  let direct: Redis;
  let viaProxy: Redis;

  beforeAll(async () => {
    redis = await startRedisServer();
    proxy = await startTcpProxy(redis.port);
    direct = new Redis(redis.port, { host: "127.0.0.1", lazyConnect: true });
    viaProxy = new Redis(proxy.port, { host: "127.0.0.1", lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: COMMAND_TIMEOUT_MS });
    viaProxy.on("error", () => undefined);
    await Promise.all([direct.connect(), viaProxy.connect()]);
  });
  afterAll(async () => {
    viaProxy?.disconnect();
    direct?.disconnect();
    await proxy?.close();
    await redis?.stop();
  });

  test("its call is claimed once due by a node that stayed up", async () => {
    const prefix = `truss-test-${randomUUID()}`;
    const silent = redisInboxStore({ redis: viaProxy, prefix });
    const claimer = redisInboxStore({ redis: direct, prefix });
    const user = { companyId: "acme", userId: "u-1" };
    // Another user's append first, due long after this test: Redis caches the scripts, so the append
    // below goes out as EVALSHA and needs no answer (a NOSCRIPT) before it is sent again as EVAL.
    await silent.append({ companyId: "acme", userId: "u-warm" }, "expense:rejected", {}, { undeliveredAfterMs: 3_600_000 });

    proxy.dropDownstream();
    const failure = await silent.append(user, "expense:rejected", { expenseId: "e-1" }, { undeliveredAfterMs: 200 }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(Error);
    // Redis stored the message all the same.
    const stored = await claimer.read(user, null, 10);
    expect(stored.map((message) => message.data)).toEqual([{ expenseId: "e-1" }]);

    const claims: UndeliveredClaim[] = [];
    await waitFor(
      async () => {
        claims.push(...(await claimer.claimUndelivered!(10, 60_000)));
        return claims.length > 0;
      },
      { timeoutMs: 5_000, intervalMs: 50, message: "the silent node's call claimed by the other node" },
    );
    expect(claims.map((claim) => ({ user: claim.user, id: claim.message.id, attempt: claim.attempt }))).toEqual([{ user, id: stored[0]!.id, attempt: 1 }]);
  });
});
