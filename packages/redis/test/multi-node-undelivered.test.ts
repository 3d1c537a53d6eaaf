import type { UndeliveredCall, UndeliveredOptions } from "@truss/core";
import { redisInboxStore } from "@truss/redis";
import type { InboxMessage } from "@truss/protocol";
import { collect, requireRedisOrSkip, sleep, waitFor } from "@truss/test-utils";
import { describe, expect, test } from "vitest";
import { inboxKeys } from "../src/keys.js";
import { redisNodes } from "./support/redis-nodes.js";

/**
 * The undelivered hook across engine nodes sharing one redis-server: each
 * call is claimed in Redis, so it is made once whichever nodes poll, and a
 * node that stops mid-call leaves it to another after the lease.
 */
describe.runIf(requireRedisOrSkip("@truss/redis undelivered calls across nodes"))("undelivered calls on nodes sharing one redis-server", () => {
  const redis = redisNodes();

  const timing = { afterMs: 200, pollIntervalMs: 50 } satisfies Partial<UndeliveredOptions>;

  test("1,000 messages to offline users on two nodes: exactly 1,000 calls, one per message", async () => {
    const group = redis.group();
    const calls: Array<{ node: string; call: UndeliveredCall }> = [];
    const on = (node: string): UndeliveredOptions => ({ ...timing, handler: (call) => void calls.push({ node, call }) });
    const [a, b] = [await group.start("A", { undelivered: on("A") }), await group.start("B", { undelivered: on("B") })];

    const sent = new Map<string, InboxMessage>();
    await Promise.all(
      Array.from({ length: 1000 }, async (_, index) => {
        const node = index % 2 === 0 ? a : b;
        const userId = `foreman-${index % 100}`;
        const message = await node.engine.toUser("acme", userId).emit("expense:rejected", { index });
        sent.set(`${userId} ${message.id}`, message);
      }),
    );
    expect(sent.size).toBe(1000);
    await waitFor(() => calls.length >= 1000, { timeoutMs: 20_000, message: `1,000 calls (${calls.length} so far)` });
    // Past several polls and a lease's worth of retries, nothing more comes.
    await sleep(500);
    expect(calls).toHaveLength(1000);
    const called = new Map(calls.map(({ call }) => [`${call.userId} ${call.message.id}`, call]));
    expect(called.size).toBe(1000);
    for (const [key, message] of sent) expect(called.get(key)?.message, key).toEqual(message);
    expect(calls.every(({ call }) => call.attempt === 1 && call.devicesOnline === 0 && call.companyId === "acme")).toBe(true);
    expect(new Set(calls.map(({ node }) => node))).toEqual(new Set(["A", "B"]));
  }, 40_000);

  test("an ack on one node cancels the call another node would make", async () => {
    const group = redis.group();
    const calls: UndeliveredCall[] = [];
    const undelivered = { afterMs: 500, pollIntervalMs: 50, handler: (call: UndeliveredCall) => void calls.push(call) };
    const [a, b] = [await group.start("A", { undelivered }), await group.start("B", { undelivered })];
    const device = await group.connect(b, { companyId: "acme", userId: "chloe", deviceId: "phone" });
    const received = collect<InboxMessage>(device, "inbox:message");
    device.on("inbox:message", (message: InboxMessage) => device.emit("inbox:ack", { ids: [message.id] }));
    await a.engine.toUser("acme", "chloe").emit("expense:rejected", { expenseId: "e-1" });
    const unacknowledged = await a.engine.toUser("acme", "dave").emit("expense:rejected", { expenseId: "e-2" });
    await waitFor(() => received.length === 1);
    await waitFor(() => calls.length === 1);
    await sleep(300);
    expect(calls.map((call) => [call.userId, call.message.id])).toEqual([["dave", unacknowledged.id]]);
  });

  test("a node that stops mid-call leaves the call to another node, which makes it after the lease", async () => {
    const group = redis.group();
    let claimedAt = 0;
    const stuck: UndeliveredCall[] = [];
    const hanging: UndeliveredOptions = {
      ...timing,
      timeoutMs: 500,
      leaseMs: 1_500,
      handler: (call) => {
        claimedAt ||= Date.now();
        stuck.push(call);
        return new Promise(() => {});
      },
    };
    const a = await group.start("A", { undelivered: hanging });
    const message = await a.engine.toUser("acme", "chloe").emit("expense:rejected", { expenseId: "e-3" });
    await waitFor(() => stuck.length === 1, { message: "node A's call" });

    const taken: Array<{ call: UndeliveredCall; at: number }> = [];
    const b = await group.start("B", { undelivered: { ...timing, timeoutMs: 500, leaseMs: 1_500, handler: (call) => void taken.push({ call, at: Date.now() }) } });
    // Node A stops with its handler still running: its claim is never settled.
    await a.close();
    await waitFor(() => taken.length === 1, { timeoutMs: 5_000, message: "node B to take the call over" });
    expect(taken[0]!.at - claimedAt).toBeGreaterThanOrEqual(1_400);
    expect(taken[0]!.call).toMatchObject({ companyId: "acme", userId: "chloe", message, attempt: 2 });
    expect(stuck).toHaveLength(1);
    await sleep(300);
    expect(taken).toHaveLength(1);
    expect(b.redisErrors).toEqual([]);
  });

  test("a node killed (SIGKILL) mid-call leaves the call to another node, which makes it after the lease", async () => {
    const group = redis.group();
    const sender = await group.start("sender");
    const leaseMs = 2_000;
    const child = await redis.child({
      prefix: group.prefix,
      ttlMs: 30_000,
      undelivered: { afterMs: 100, leaseMs, timeoutMs: 1_000, pollIntervalMs: 50 },
    });
    const user = { companyId: "acme", userId: "erin" };
    // Stored as an engine with the hook would store it; the child is then the only node that claims.
    const inbox = redisInboxStore({ redis: sender.storeClient, prefix: group.prefix });
    const { message } = await inbox.append(user, "expense:rejected", { expenseId: "e-4" }, { undeliveredAfterMs: 100 });
    const keys = inboxKeys(group.prefix, user.companyId, user.userId);
    await waitFor(async () => (await sender.storeClient.hget(keys.undeliveredAttempts, message.id)) === "1", { message: `the child's claim (${child.describe()})` });
    const claimedAt = Date.now();
    await child.kill();

    const taken: Array<{ call: UndeliveredCall; at: number }> = [];
    await group.start("B", { undelivered: { ...timing, leaseMs, timeoutMs: 1_000, handler: (call) => void taken.push({ call, at: Date.now() }) } });
    await waitFor(() => taken.length === 1, { timeoutMs: 6_000, message: "node B to take the call over" });
    expect(taken[0]!.at - claimedAt).toBeGreaterThanOrEqual(leaseMs - 200);
    expect(taken[0]!.call).toMatchObject({ ...user, message, attempt: 2 });
    await sleep(300);
    expect(taken).toHaveLength(1);
  }, 30_000);

  test("a user's pending calls never outgrow twice the inbox's cap, however many messages the cap dropped", async () => {
    const group = redis.group();
    const node = await group.start("A");
    const inbox = redisInboxStore({ redis: node.storeClient, prefix: group.prefix, maxLength: 10 });
    const user = { companyId: "acme", userId: "offline-for-a-week" };
    for (let index = 0; index < 100; index++) await inbox.append(user, "expense:rejected", { index }, { undeliveredAfterMs: 3_600_000 });
    const pending = await node.storeClient.zcard(inboxKeys(group.prefix, user.companyId, user.userId).undelivered);
    expect(pending).toBeLessThanOrEqual(20);
    expect(pending).toBeGreaterThanOrEqual(10);
  });
});
