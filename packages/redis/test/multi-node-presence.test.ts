import { connect, type TrussClient } from "@truss/client";
import type { PresenceUpdate, PresenceUpdates } from "@truss/protocol";
import { collect, followPresence, request, requireRedisOrSkip, signToken, sleep, startTcpProxy, waitFor, type TcpProxy } from "@truss/test-utils";
import { afterEach, describe, expect, test } from "vitest";
import { company, user, type EngineNode } from "./support/nodes.js";
import { redisNodes } from "./support/redis-nodes.js";

const TTL_MS = 1000;

/**
 * Presence across engine nodes sharing one redis-server: every node lists the
 * same users, every node's clients hear each transition once, and a node that
 * dies without cleaning up stops holding its users online within the TTL.
 * A node whose adapter subscriber was cut off gives its followers and scope
 * members the whole picture again once it is subscribed again.
 */
describe.runIf(requireRedisOrSkip("@truss/redis multi-node presence tests"))("presence across nodes", () => {
  const redis = redisNodes();
  let proxy: TcpProxy | undefined;
  const clients: TrussClient[] = [];
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await proxy?.close();
    proxy = undefined;
  });

  const listing = async (node: EngineNode, companyId: string) =>
    (await node.engine.presence(companyId)).map((listed) => ({
      userId: listed.userId,
      devices: listed.devices.map((device) => device.deviceId).sort(),
    }));

  test("every node lists the same users, and clients on every node hear each transition once", async () => {
    const group = redis.group({ engine: { presenceTiming: { ttlMs: TTL_MS } } });
    const nodes = await group.startThree();
    const companyId = company();
    const watchers = await Promise.all(nodes.map((node) => group.connect(node, { userId: user("watcher"), companyId })));
    const outsider = await group.connect(nodes[1], { userId: user("outsider"), companyId: company() });
    const ann = user("ann");
    const heard = await Promise.all(watchers.map((socket) => followPresence(socket)));
    const aboutAnn = (updates: PresenceUpdate[]) => updates.filter((update) => update.userId === ann);
    const outsiderHeard = await followPresence(outsider);

    // Ann's first two devices come online at once, on two different nodes.
    const [phone, laptop] = await Promise.all([
      group.connect(nodes[1], { userId: ann, companyId, deviceId: "phone" }),
      group.connect(nodes[2], { userId: ann, companyId, deviceId: "laptop" }),
    ]);
    await waitFor(() => heard.every((updates) => aboutAnn(updates).length > 0), { message: "ann online on every node" });
    for (const node of nodes) {
      await waitFor(async () => (await listing(node, companyId)).some((listed) => listed.userId === ann && listed.devices.length === 2), {
        message: `both of ann's devices listed on ${node.name}`,
      });
    }
    const listings = await Promise.all(nodes.map((node) => listing(node, companyId)));
    expect(listings[1]).toEqual(listings[0]);
    expect(listings[2]).toEqual(listings[0]);
    expect(listings[0]?.find((listed) => listed.userId === ann)?.devices).toEqual(["laptop", "phone"]);
    expect(listings[0]?.length).toBe(4);

    // One device leaving is no transition; the last one is, heard once everywhere.
    phone.close();
    await sleep(300);
    for (const node of nodes) expect(await node.engine.isOnline(companyId, ann)).toBe(true);
    laptop.close();
    await waitFor(() => heard.every((updates) => aboutAnn(updates).length === 2), { message: "ann offline on every node" });
    await sleep(300);
    for (const updates of heard) {
      expect(aboutAnn(updates)).toEqual([
        { userId: ann, online: true },
        { userId: ann, online: false },
      ]);
    }
    for (const node of nodes) expect((await listing(node, companyId)).map((listed) => listed.userId)).not.toContain(ann);
    expect(outsiderHeard.filter((update) => update.userId === ann)).toEqual([]);
  });

  test("a node killed with SIGKILL stops holding its users online within the TTL, and the others announce it once", async ({ annotate }) => {
    const group = redis.group({ engine: { presenceTiming: { ttlMs: TTL_MS } } });
    const nodeA = await group.start("A");
    const nodeB = await group.start("B");
    const child = await redis.child({ prefix: group.prefix, ttlMs: TTL_MS });
    await group.adaptersReady(3, () => `child node ${child.describe()}`);
    const companyId = company();
    const watchers = [
      await group.connect(nodeA, { userId: user("watcher"), companyId }),
      await group.connect(nodeB, { userId: user("watcher"), companyId }),
    ];
    const ann = user("ann");
    const bob = user("bob");
    const heard = await Promise.all(watchers.map((socket) => followPresence(socket)));
    const aboutAnn = (updates: PresenceUpdate[]) => updates.filter((update) => update.userId === ann);

    await group.connect({ url: child.url }, { userId: ann, companyId, deviceId: "phone" });
    await group.connect(nodeA, { userId: bob, companyId });
    await waitFor(() => heard.every((updates) => aboutAnn(updates).length === 1), { message: "ann online, heard on A and B" });
    // Past the TTL, the child's heartbeats still hold her online.
    await sleep(TTL_MS * 1.5);
    expect(await nodeA.engine.isOnline(companyId, ann)).toBe(true);
    expect((await listing(nodeB, companyId)).map((listed) => listed.userId)).toContain(ann);

    const killedAt = Date.now();
    await child.kill();
    await waitFor(async () => !(await nodeA.engine.isOnline(companyId, ann)), {
      timeoutMs: TTL_MS * 3,
      message: "ann offline after the crash",
    });
    const offlineAfterMs = Date.now() - killedAt;
    await annotate(`offline ${offlineAfterMs} ms after SIGKILL (TTL ${TTL_MS} ms)`);
    // Her last heartbeat was at most a heartbeat interval before the kill.
    expect(offlineAfterMs).toBeLessThanOrEqual(TTL_MS + 500);
    await waitFor(() => heard.every((updates) => aboutAnn(updates).length === 2), {
      timeoutMs: TTL_MS * 3,
      message: "ann's offline transition on A and B",
    });
    await annotate(`offline announced on A and B ${Date.now() - killedAt} ms after SIGKILL`);
    // Both nodes sweep; a few more sweep intervals must not repeat it.
    await sleep(TTL_MS);
    for (const updates of heard) {
      expect(aboutAnn(updates)).toEqual([
        { userId: ann, online: true },
        { userId: ann, online: false },
      ]);
    }
    expect(await nodeB.engine.isOnline(companyId, bob)).toBe(true);
    expect((await listing(nodeB, companyId)).map((listed) => listed.userId)).not.toContain(ann);
  });

  test("a node that stalls past the TTL is swept offline, and announces its users online again when it resumes", async () => {
    const group = redis.group({ engine: { presenceTiming: { ttlMs: TTL_MS } } });
    const nodeA = await group.start("A");
    const nodeB = await group.start("B");
    const child = await redis.child({ prefix: group.prefix, ttlMs: TTL_MS });
    await group.adaptersReady(3, () => `child node ${child.describe()}`);
    const companyId = company();
    const watchers = [
      await group.connect(nodeA, { userId: user("watcher"), companyId }),
      await group.connect(nodeB, { userId: user("watcher"), companyId }),
    ];
    const ann = user("ann");
    const heard = await Promise.all(watchers.map((socket) => followPresence(socket)));
    const aboutAnn = (updates: PresenceUpdate[]) => updates.filter((update) => update.userId === ann);
    const phone = await group.connect({ url: child.url }, { userId: ann, companyId, deviceId: "phone" });
    await waitFor(() => heard.every((updates) => aboutAnn(updates).length === 1), { message: "ann online" });

    child.pause();
    try {
      await waitFor(() => heard.every((updates) => aboutAnn(updates).length === 2), {
        timeoutMs: TTL_MS * 4,
        message: "ann swept offline while her node stalls",
      });
      expect(await nodeA.engine.isOnline(companyId, ann)).toBe(false);
    } finally {
      child.resume();
    }

    // Her socket never dropped; the node's first heartbeat re-adds her device.
    await waitFor(() => heard.every((updates) => aboutAnn(updates).length === 3), {
      timeoutMs: TTL_MS * 3,
      message: "ann announced online again",
    });
    await sleep(TTL_MS);
    for (const updates of heard) {
      expect(aboutAnn(updates)).toEqual([
        { userId: ann, online: true },
        { userId: ann, online: false },
        { userId: ann, online: true },
      ]);
    }
    expect(phone.connected).toBe(true);
    expect(await nodeB.engine.isOnline(companyId, ann)).toBe(true);
  });

  test("a node whose subscriber was cut off resyncs its followers and scope members: who left, went offline, came and joined meanwhile", async () => {
    proxy = await startTcpProxy(redis.server.port);
    const group = redis.group({ engine: { presenceTiming: { ttlMs: 3000 }, authorize: () => true } });
    const nodeA = await group.start("A", {}, { subscriberPort: proxy.port });
    const nodeB = await group.start("B");
    await group.adaptersReady();
    const companyId = company();
    const project = { topic: "project:p-1" };
    // Alice on A, through @truss/client: the company's presence and the project's members, as her app shows them.
    const alice = connect(nodeA.url, {
      token: signToken({ userId: "alice", companyId }),
      deviceId: "alice-phone",
      reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
      socketOptions: { transports: ["websocket"] },
    });
    clients.push(alice);
    const online = () => (alice.presence.current ?? []).map((listed) => listed.userId).sort();
    alice.presence.subscribe(() => undefined);
    await alice.subscribe("project:p-1");
    const here = alice.presence.in(project);
    await here.join({ editing: "budget" });
    const others = () => here.others.map((member) => `${member.userId} ${JSON.stringify(member.state)}`).sort();
    // And a raw follower on A: what the protocol itself carries.
    const raw = await group.connect(nodeA, { userId: "rita", companyId });
    const rawResyncs: PresenceUpdates[] = [];
    raw.on("presence:updates", (batch: PresenceUpdates) => void (batch.resync && rawResyncs.push(batch)));
    await followPresence(raw);

    const bob = await group.connect(nodeB, { userId: "bob", companyId });
    expect((await request(bob, "topic:subscribe", project)).ok).toBe(true);
    expect((await request(bob, "presence:join", { scope: project, state: 2 })).ok).toBe(true);
    await waitFor(() => others().join() === "bob 2" && online().includes("bob"), { message: "bob online and in the project, seen on A" });

    // A's subscriber is cut and kept from reconnecting: what B announces now never reaches A.
    proxy.hold();
    proxy.cut();
    await waitFor(async () => (await nodeB.engine.io!.of("/").adapter.serverCount()) === 1, { message: "A's subscriber gone" });
    bob.close();
    const carol = await group.connect(nodeB, { userId: "carol", companyId });
    expect((await request(carol, "topic:subscribe", project)).ok).toBe(true);
    expect((await request(carol, "presence:join", { scope: project, state: 3 })).ok).toBe(true);
    await waitFor(async () => !(await nodeB.engine.isOnline(companyId, "bob")), { message: "bob offline in the store" });
    await sleep(300);
    expect(others()).toEqual(["bob 2"]);

    proxy.release();
    await waitFor(() => others().join() === "carol 3" && online().join() === "alice,carol,rita", {
      timeoutMs: 5000,
      message: "A's clients brought up to date once A resubscribed",
    });
    expect(rawResyncs.at(-1)?.updates.map((update) => update.userId).sort()).toEqual(["alice", "carol", "rita"]);
    expect(rawResyncs.at(-1)?.updates.every((update) => update.online)).toBe(true);
    expect(here.joined).toBe(true);
  });
});
