import type { InboxMessage } from "@truss/protocol";
import { connect, type StreamResync } from "@truss/client";
import {
  collect,
  request,
  requireRedisOrSkip,
  signToken,
  sleep,
  startRedisServer,
  waitFor,
} from "@truss/test-utils";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { Redis } from "ioredis";
import { company, NodeGroup, STORE_COMMAND_TIMEOUT_MS, user, type EngineNode } from "./support/nodes.js";
import { redisNodes } from "./support/redis-nodes.js";

const TTL_MS = 1000;
/**
 * Longer than the TTL, and longer than ioredis's default 20 retries of a
 * queued command take (about 10.5 s of back-off), so commands queued on the
 * adapter's connections at the start of the outage are failed, not replayed.
 */
const OUTAGE_MS = 12_000;
const RECOVERY_BUDGET_MS = 5_000;
/** Longer than the store client's command timeout. */
const PAUSE_MS = 4_000;

/**
 * Two engine nodes on one redis-server, which is stopped mid-run and started
 * again, empty, on the same port: nothing crashes, the outage is reported,
 * durable sends fail fast with a code, and everything works again shortly
 * after Redis is back, without restarting the application.
 */
describe.runIf(requireRedisOrSkip("@truss/redis fault tests"))("a Redis outage under two engine nodes", () => {
  const redis = redisNodes();
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);

  beforeAll(async () => {
    process.on("unhandledRejection", onUnhandled);
    process.on("uncaughtException", onUnhandled);
  });
  afterEach(async () => {
    // The nodes must close against a live Redis, even when a case failed mid-outage.
    await redis.server.restart().catch(() => undefined);
  });
  afterAll(async () => {
    process.off("unhandledRejection", onUnhandled);
    process.off("uncaughtException", onUnhandled);
  });

  test(
    "stopping and restarting Redis crashes nothing, degrades health, fails toUser fast, and recovers within 5 s",
    async ({ annotate }) => {
      const group = redis.group({ engine: { presenceTiming: { ttlMs: TTL_MS } } });
      const [nodeA, nodeB] = await group.startTwo();
      const companyId = company();
      const watcherId = user("watcher");
      const ann = user("ann");
      const watcher = await group.connect(nodeA, { userId: watcherId, companyId });
      const phone = await group.connect(nodeB, { userId: ann, companyId, deviceId: "phone" });
      const onPhone = collect<{ probe: number }>(phone, "project:updated");
      const onWatcher = collect<{ probe: number }>(watcher, "project:updated");
      const inbox = collect<InboxMessage>(phone, "inbox:message");
      await waitFor(async () => (await nodeA.engine.presence(companyId)).length === 2, { message: "both users online" });
      expect((await nodeA.engine.health()).status).toBe("ok");

      await redis.server.stop();

      for (const node of [nodeA, nodeB]) {
        await waitFor(
          async () => {
            const health = await node.engine.health();
            return (
              health.status === "degraded" &&
              health.stores.presence.state === "down" &&
              health.stores.inbox.state === "down" &&
              health.stores.documents.state === "down"
            );
          },
          { timeoutMs: 3_000, message: `${node.name} reporting its stores down` },
        );
      }

      // Durable sends refuse at once, with a code, on both nodes.
      for (const node of [nodeA, nodeB]) {
        const startedAt = Date.now();
        const failure = await node.engine
          .toUser(companyId, ann)
          .emit("expense:approved", { during: "outage" })
          .then(() => null, (error: unknown) => error);
        expect(failure, `toUser on ${node.name}`).toMatchObject({ code: "STORE_UNAVAILABLE" });
        expect(Date.now() - startedAt).toBeLessThan(3_000);
      }
      // So do socket requests that need a store.
      const ack = await request(phone, "document:get", { type: "project", id: "tower-b" });
      expect(ack).toMatchObject({ ok: false, error: { code: "STORE_UNAVAILABLE" } });
      // Live broadcasts go nowhere but must not throw or crash anything later.
      expect(() => nodeA.engine.toCompany(companyId).emit("project:updated", { probe: -1 })).not.toThrow();
      expect(() => nodeB.engine.toCompany(companyId).emit("project:updated", { probe: -1 })).not.toThrow();

      await sleep(OUTAGE_MS);
      await redis.server.restart();
      const backAt = Date.now();

      const recovered = await measureRecovery({ nodeA, nodeB, companyId, ann, onPhone, onWatcher, inbox });
      await annotate(`working again after Redis came back, ms: ${JSON.stringify(recovered)}`);
      // The restarted Redis knew no subscriptions: ioredis re-made them on both nodes.
      for (const node of [nodeA, nodeB]) expect(await node.engine.io!.of("/").adapter.serverCount()).toBe(2);
      expect(Math.max(...Object.values(recovered)), JSON.stringify(recovered)).toBeLessThan(RECOVERY_BUDGET_MS);
      expect(Date.now() - backAt).toBeLessThan(RECOVERY_BUDGET_MS + 1_000);

      // Redis came back empty: only the heartbeats can have put both users back.
      const listed = await request(watcher, "presence:list", {});
      expect(listed.users.map((listedUser: { userId: string }) => listedUser.userId).sort()).toEqual([ann, watcherId].sort());
      expect(unhandled).toEqual([]);
      expect(nodeA.redisErrors.length + nodeB.redisErrors.length).toBeGreaterThan(0);
    },
    OUTAGE_MS + 30_000,
  );

  test("a Redis that stops answering (CLIENT PAUSE) fails toUser within the command timeout instead of hanging", async () => {
    const group = redis.group({ engine: { presenceTiming: { ttlMs: TTL_MS } } });
    const [nodeA, nodeB] = await group.startTwo();
    const companyId = company();
    const ann = user("ann");
    const phone = await group.connect(nodeB, { userId: ann, companyId, deviceId: "phone" });
    const inbox = collect<InboxMessage>(phone, "inbox:message");
    const admin = new Redis(redis.server.url);
    admin.on("error", () => undefined);
    try {
      // The TCP connections stay up; Redis just does not answer, as when it
      // is blocked by a slow script or a network drops packets silently.
      await admin.call("CLIENT", "PAUSE", String(PAUSE_MS), "ALL");
      const startedAt = Date.now();
      const failure = await nodeA.engine
        .toUser(companyId, ann)
        .emit("expense:approved", { during: "pause" })
        .then(() => null, (error: unknown) => error);
      const elapsed = Date.now() - startedAt;
      expect(failure).toMatchObject({ code: "STORE_UNAVAILABLE" });
      expect(elapsed).toBeLessThan(STORE_COMMAND_TIMEOUT_MS + 1_000);
      expect((await nodeA.engine.health()).status).toBe("degraded");

      await waitFor(async () => (await nodeA.engine.health()).status === "ok", {
        timeoutMs: PAUSE_MS + 5_000,
        message: "health ok once the pause ends",
      });
      const after = await nodeA.engine.toUser(companyId, ann).emit("expense:approved", { after: "pause" });
      await waitFor(() => inbox.some((message) => message.id === after.id), { message: "the message after the pause on B" });
      expect(unhandled).toEqual([]);
    } finally {
      await admin.call("CLIENT", "UNPAUSE").catch(() => undefined);
      admin.disconnect();
    }
  }, 30_000);

  test("with the sharded adapter, a broadcast during the outage still reaches the node's own clients at once, and crosses nodes again after it", async () => {
    const group = redis.group({ sharded: true });
    const nodeA = await group.start("A");
    const nodeB = await group.start("B");
    const companyId = company();
    const local = await group.connect(nodeA, { userId: user(), companyId });
    const remote = await group.connect(nodeB, { userId: user(), companyId });
    const onLocal = collect<{ probe: number }>(local, "project:updated");
    const onRemote = collect<{ probe: number }>(remote, "project:updated");
    let probe = 0;
    await waitFor(
      () => {
        nodeA.engine.toCompany(companyId).emit("project:updated", { probe: (probe += 1) });
        return onRemote.length > 0;
      },
      { intervalMs: 50, message: "a broadcast from A on B" },
    );

    await redis.server.stop();
    const sentAt = Date.now();
    nodeA.engine.toCompany(companyId).emit("project:updated", { probe: -1 });
    await waitFor(() => onLocal.some((payload) => payload.probe === -1), { timeoutMs: 1_000, message: "the broadcast on A's own client" });
    expect(Date.now() - sentAt).toBeLessThan(1_000);

    await sleep(2_000);
    await redis.server.restart();
    const backAt = Date.now();
    const afterOutage = probe + 1_000;
    await waitFor(
      () => {
        nodeA.engine.toCompany(companyId).emit("project:updated", { probe: (probe += 1) + 1_000 });
        return onRemote.some((payload) => payload.probe > afterOutage);
      },
      { timeoutMs: RECOVERY_BUDGET_MS, intervalMs: 50, message: "a broadcast from A on B after the restart" },
    );
    expect(Date.now() - backAt).toBeLessThan(RECOVERY_BUDGET_MS);
    expect(unhandled).toEqual([]);
  }, 30_000);

  test("a device that stayed connected while Redis restarted empty is told EPOCH_CHANGED for its company and topic streams, not moved on silently", async () => {
    const group = redis.group({ engine: { authorize: () => true } });
    const [nodeA, nodeB] = await group.startTwo();
    const companyId = company();
    const phone = connect(nodeB.url, {
      token: signToken({ userId: user(), companyId }),
      deviceId: "phone",
      socketOptions: { transports: ["websocket"] },
    });
    try {
      const heard: number[] = [];
      const resynced: StreamResync[] = [];
      phone.on("stock:updated", (data) => void heard.push((data as { n: number }).n));
      phone.on("task:moved", (data) => void heard.push((data as { n: number }).n));
      phone.onResync((resync) => resynced.push(resync));
      await waitFor(() => phone.status === "connected", { message: "the phone to connect" });
      await phone.subscribe("project:p-1");
      for (let n = 1; n <= 3; n++) {
        await nodeA.engine.toCompany(companyId).emit("stock:updated", { n });
        await nodeA.engine.toTopic(companyId, "project:p-1").emit("task:moved", { n: 100 + n });
      }
      await waitFor(() => heard.length === 6, { message: "the broadcasts before the restart" });

      // Whatever the old epoch held after the phone's position is gone with it: nothing says the phone had its tail.
      await redis.server.stop();
      await redis.server.restart();
      await waitFor(
        async () => {
          await nodeA.engine.toCompany(companyId).emit("stock:updated", { n: 10 }).catch(() => null);
          await nodeA.engine.toTopic(companyId, "project:p-1").emit("task:moved", { n: 110 }).catch(() => null);
          return resynced.length >= 2;
        },
        { timeoutMs: 10_000, intervalMs: 200, message: "a resync of each stream" },
      );
      expect(resynced.map(({ stream, reason }) => `${stream} ${reason}`).sort()).toEqual(["company EPOCH_CHANGED", "topic:project:p-1 EPOCH_CHANGED"]);
      // Live delivery goes on in the new epoch.
      await nodeA.engine.toCompany(companyId).emit("stock:updated", { n: 20 });
      await waitFor(() => heard.includes(20), { message: "a broadcast after the resync" });
      expect(unhandled).toEqual([]);
    } finally {
      phone.close();
    }
  }, 40_000);

  test("at maxmemory with noeviction, toUser is refused with STORE_UNAVAILABLE and Redis stays within its limit", async () => {
    const maxmemory = 4 * 1024 * 1024;
    const full = await startRedisServer({ args: ["--maxmemory", String(maxmemory), "--maxmemory-policy", "noeviction"] });
    const oomGroup = new NodeGroup({ url: full.url });
    const observer = new Redis(full.url);
    observer.on("error", () => undefined);
    try {
      const node = await oomGroup.start("A");
      const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await observer.info("memory"))?.[1]);
      const payload = { note: "x".repeat(300) };
      let stored = 0;
      let refusal: unknown;
      // A stream per user: each new one costs a few KB, so 4 MB fill up fast.
      while (refusal === undefined && stored < 20_000) {
        await node.engine
          .toUser("acme", `user-${stored % 2_000}`)
          .emit("expense:approved", payload)
          .then(() => (stored += 1), (error: unknown) => (refusal = error));
      }
      expect(refusal, `${stored} messages stored and none refused`).toMatchObject({
        code: "STORE_UNAVAILABLE",
        // Redis's own words stay on the server, as the error's cause.
        cause: expect.objectContaining({ message: expect.stringContaining("OOM") }),
      });
      // Refused before the write, so Redis is over its limit by one write at most.
      expect(await usedMemory()).toBeLessThan(maxmemory * 1.05);
      expect(unhandled).toEqual([]);
    } finally {
      observer.disconnect();
      await oomGroup.closeAll();
      await full.stop();
    }
  }, 60_000);
});

interface RecoveryProbes {
  nodeA: EngineNode;
  nodeB: EngineNode;
  companyId: string;
  ann: string;
  onPhone: { probe: number }[];
  onWatcher: { probe: number }[];
  inbox: InboxMessage[];
}

/**
 * Probes every path until each works again, and resolves with how long each
 * took after Redis came back, in ms: health, cross-node broadcasts both ways,
 * a toUser from A delivered on B, and presence listing both users on both nodes.
 */
async function measureRecovery(probes: RecoveryProbes): Promise<Record<string, number>> {
  const { nodeA, nodeB, companyId, ann, onPhone, onWatcher, inbox } = probes;
  const startedAt = Date.now();
  const done: Record<string, number> = {};
  let probe = 0;
  const sentToUser = new Set<string>();
  const checks: Record<string, () => Promise<boolean>> = {
    health: async () => (await nodeA.engine.health()).status === "ok" && (await nodeB.engine.health()).status === "ok",
    broadcastAtoB: async () => {
      probe += 1;
      nodeA.engine.toCompany(companyId).emit("project:updated", { probe });
      return onPhone.some((payload) => payload.probe > 0);
    },
    broadcastBtoA: async () => {
      probe += 1;
      nodeB.engine.toCompany(companyId).emit("project:updated", { probe });
      return onWatcher.some((payload) => payload.probe > 0);
    },
    toUserAtoB: async () => {
      await nodeA.engine
        .toUser(companyId, ann)
        .emit("expense:approved", { after: "outage" })
        .then((message) => sentToUser.add(message.id), () => undefined);
      return inbox.some((message) => sentToUser.has(message.id));
    },
    presence: async () => {
      const listings = await Promise.all([nodeA, nodeB].map((node) => node.engine.presence(companyId).catch(() => [])));
      return listings.every((listing) => listing.length === 2);
    },
  };
  await waitFor(
    async () => {
      for (const [name, check] of Object.entries(checks)) {
        if (done[name] === undefined && (await check().catch(() => false))) done[name] = Date.now() - startedAt;
      }
      return Object.keys(done).length === Object.keys(checks).length;
    },
    { timeoutMs: RECOVERY_BUDGET_MS * 3, intervalMs: 50, message: "every path working again" },
  );
  return done;
}
