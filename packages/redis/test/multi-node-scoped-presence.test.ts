import { connect, type ScopedPresenceChange, type TrussClient } from "@truss/client";
import { changeStates, collectScopedPresence, joinScope, mostFramesWithin, request, requireRedisOrSkip, signToken, sleep, startTcpProxy, type TcpProxy, waitFor } from "@truss/test-utils";
import { afterEach, describe, expect, test } from "vitest";
import { company, user, type EngineNode } from "./support/nodes.js";
import { redisNodes } from "./support/redis-nodes.js";

const TTL_MS = 1000;
/** A document scope: without a policy any member of the company may watch it, so the child node needs none. */
const report = { type: "site-report", id: "r-1" };

/**
 * Presence in a document across engine nodes sharing one redis-server: a
 * member on one node hears those on another join, update and leave, every
 * node lists the same members, and a node killed with SIGKILL stops holding
 * its members within the TTL, announced by the survivors.
 */
describe.runIf(requireRedisOrSkip("@truss/redis multi-node scoped presence tests"))("scoped presence across nodes", () => {
  const redis = redisNodes();
  const devices: TrussClient[] = [];
  let proxy: TcpProxy | undefined;

  afterEach(async () => {
    for (const device of devices.splice(0)) device.close();
    await proxy?.close();
    proxy = undefined;
  });

  /** The user ids present, sorted: members who join in the same ms are listed by their random member id. */
  const members = async (node: EngineNode, companyId: string) => (await node.engine.presence.in(companyId, report).list()).map((member) => member.userId).sort();

  test("join, update and leave on one node are heard on the other, and both list the same members", async () => {
    const group = redis.group({ engine: { presenceTiming: { ttlMs: TTL_MS } } });
    const [nodeA, nodeB] = await group.startTwo();
    const companyId = company();
    const ann = await group.connect(nodeA, { userId: "ann", companyId });
    const ben = await group.connect(nodeB, { userId: "ben", companyId });
    const outsider = await group.connect(nodeB, { userId: "ann", companyId: company() });
    for (const socket of [ann, ben, outsider]) expect((await request(socket, "document:watch", report)).ok).toBe(true);
    const annHeard = collectScopedPresence(ann);
    const outsiderHeard = collectScopedPresence(outsider);
    await request(outsider, "presence:join", { scope: report, state: {} });

    expect(await request(ann, "presence:join", { scope: report, state: { viewing: true } })).toMatchObject({ ok: true, total: 1 });
    const joined = await request(ben, "presence:join", { scope: report, state: { editing: "notes" } });
    expect(joined.members.map((member: { userId: string }) => member.userId).sort()).toEqual(["ann", "ben"]);
    await waitFor(() => annHeard.length === 1, { message: "ann on A hears ben join on B" });
    expect(annHeard[0]).toMatchObject({ change: "joined", member: { userId: "ben", state: { editing: "notes" } } });

    await request(ben, "presence:set", { scope: report, state: { editing: "weather" } });
    await waitFor(() => annHeard.length === 2, { message: "ben's update" });
    expect(annHeard[1]).toMatchObject({ change: "updated", member: { userId: "ben", state: { editing: "weather" } } });
    expect(await members(nodeA, companyId)).toEqual(["ann", "ben"]);
    expect(await members(nodeB, companyId)).toEqual(["ann", "ben"]);

    await request(ben, "presence:leave", { scope: report });
    await waitFor(() => annHeard.length === 3, { message: "ben's leave" });
    expect(annHeard[2]).toMatchObject({ change: "left", member: { userId: "ben" } });
    await request(ben, "presence:join", { scope: report, state: null });
    await waitFor(() => annHeard.length === 4);
    ben.close();
    await waitFor(() => annHeard.length === 5, { message: "ben's disconnect" });
    expect(annHeard[4]).toMatchObject({ change: "left", member: { userId: "ben" } });
    expect(await members(nodeB, companyId)).toEqual(["ann"]);
    await sleep(100);
    expect(outsiderHeard).toEqual([]);
  });

  test("a node killed with SIGKILL stops holding its members within the TTL, and a surviving node announces them gone once", async ({ annotate }) => {
    const group = redis.group({ engine: { presenceTiming: { ttlMs: TTL_MS } } });
    const nodeA = await group.start("A");
    const child = await redis.child({ prefix: group.prefix, ttlMs: TTL_MS });
    await group.adaptersReady(2, () => `child node ${child.describe()}`);
    const companyId = company();
    const ann = await group.connect(nodeA, { userId: "ann", companyId });
    const carol = await group.connect({ url: child.url }, { userId: user("carol"), companyId });
    for (const socket of [ann, carol]) await request(socket, "document:watch", report);
    const annHeard = collectScopedPresence(ann);
    await request(ann, "presence:join", { scope: report, state: {} });
    await request(carol, "presence:join", { scope: report, state: { editing: "notes" } });
    await waitFor(() => annHeard.length === 1, { message: "carol joined, heard on A" });
    // Past the TTL, the child's heartbeats still hold her there.
    await sleep(TTL_MS * 1.5);
    expect((await members(nodeA, companyId)).length).toBe(2);

    const killedAt = Date.now();
    await child.kill();
    await waitFor(async () => (await members(nodeA, companyId)).length === 1, { timeoutMs: TTL_MS * 3, message: "carol gone from the list" });
    const goneAfterMs = Date.now() - killedAt;
    await waitFor(() => annHeard.length === 2, { timeoutMs: TTL_MS * 3, message: "carol's left, announced by A's sweep" });
    await annotate(`listed gone ${goneAfterMs} ms, announced ${Date.now() - killedAt} ms after SIGKILL (TTL ${TTL_MS} ms)`);
    expect(goneAfterMs).toBeLessThanOrEqual(TTL_MS + 500);
    expect(annHeard[1]).toMatchObject({ change: "left", member: { state: { editing: "notes" } } });
    await sleep(TTL_MS);
    expect(annHeard).toHaveLength(2);
  });

  test("@truss/client devices on two nodes: a device whose TCP is cut leaves, and joins again with its latest state when it reconnects", async () => {
    const group = redis.group({ engine: { presenceTiming: { ttlMs: TTL_MS } } });
    const [nodeA, nodeB] = await group.startTwo();
    proxy = await startTcpProxy(nodeB.port);
    const companyId = company();
    const device = (url: string, userId: string) => {
      const client = connect(url, {
        deviceId: `${userId}-phone`,
        token: signToken({ userId, companyId }),
        reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
        socketOptions: { transports: ["websocket"] },
      });
      devices.push(client);
      return client;
    };
    const office = device(nodeA.url, "ann");
    const site = device(proxy.url, "ben");
    await Promise.all([office.documents.watch(report.type, report.id), site.documents.watch(report.type, report.id)]);
    const seen = office.presence.in(report);
    await seen.join({ viewing: true });
    const mine = site.presence.in(report);
    await mine.join({ editing: "notes" });
    await waitFor(() => seen.others.length === 1, { message: "ann on A sees ben on B" });
    const first = seen.others[0]!.memberId;

    const heard: ScopedPresenceChange[] = [];
    seen.onChange((change) => heard.push(change));
    proxy.cut();
    // His leave may come in one batch with his rejoin, when he is back within the window.
    await waitFor(() => heard.some((change) => change.change === "left" && change.member.memberId === first), { message: "ben's cut connection left" });
    mine.update({ editing: "photos" });
    await waitFor(() => seen.others.length === 1 && seen.others[0]!.memberId !== first && (seen.others[0]!.state as { editing?: string }).editing === "photos", {
      timeoutMs: 5000,
      message: "ben back, with his latest state",
    });
    expect(await members(nodeA, companyId)).toEqual(["ann", "ben"]);
  });

  test("20 members on two nodes each changing their state 20 times a second: each node batches its own, so a member hears at most about 10 frames a second from each, and ends with every other member's latest state", async () => {
    const group = redis.group({ engine: { presenceTiming: { ttlMs: TTL_MS } } });
    const [nodeA, nodeB] = await group.startTwo();
    const companyId = company();
    const crew = await Promise.all(Array.from({ length: 20 }, (_, index) => group.connect(index % 2 === 0 ? nodeA : nodeB, { userId: `m${index}`, companyId })));
    for (const socket of crew) expect((await request(socket, "document:watch", report)).ok).toBe(true);
    const views = await joinScope(crew, report);
    await sleep(300);

    const startedAt = Date.now();
    const last = await changeStates(crew, report, { perSecond: 20, durationMs: 2000 });
    const elapsedMs = Date.now() - startedAt;
    // A member is not sent a batch of its own changes alone, so only the others' states are asserted.
    const seesOthers = (view: (typeof views)[number]) => crew.every((other) => other === view.socket || JSON.stringify(view.states.get(other.id!)) === JSON.stringify(last.get(other.id!)));
    await waitFor(() => views.every(seesOthers), { message: "every other member's latest state at every member, on both nodes" });
    for (const view of views) {
      const frames = view.frames.filter((at) => at >= startedAt && at <= startedAt + elapsedMs);
      // One batch a window (100 ms) from each node, give or take a quiet scope's first change and late timers.
      expect(mostFramesWithin(frames)).toBeLessThanOrEqual(2 * 12);
    }
    expect(await members(nodeA, companyId)).toHaveLength(20);
  });

  test("unsubscribeUser on one node ends the presence of the user's socket on another, and the scope hears it", async () => {
    const group = redis.group({ engine: { presenceTiming: { ttlMs: TTL_MS }, authorize: () => true } });
    const [nodeA, nodeB] = await group.startTwo();
    const companyId = company();
    const project = { topic: "project:p-17" };
    const ann = await group.connect(nodeA, { userId: "ann", companyId });
    const ben = await group.connect(nodeB, { userId: "ben", companyId });
    for (const socket of [ann, ben]) expect((await request(socket, "topic:subscribe", project)).ok).toBe(true);
    const annHeard = collectScopedPresence(ann);
    await request(ann, "presence:join", { scope: project, state: {} });
    await request(ben, "presence:join", { scope: project, state: {} });
    await waitFor(() => annHeard.length === 1);
    expect((await nodeA.engine.unsubscribeUser(companyId, "ben", project.topic)).sockets).toBe(1);
    await waitFor(() => annHeard.length === 2, { message: "ben's presence ended with his subscription on B" });
    expect(annHeard[1]).toMatchObject({ change: "left", member: { userId: "ben" } });
    expect((await nodeA.engine.presence.in(companyId, project).list()).map((member) => member.userId)).toEqual(["ann"]);
  });

  test("a node that stalls past the TTL has its members swept, and announces them back with their state when it resumes", async () => {
    const group = redis.group({ engine: { presenceTiming: { ttlMs: TTL_MS } } });
    const nodeA = await group.start("A");
    const child = await redis.child({ prefix: group.prefix, ttlMs: TTL_MS });
    await group.adaptersReady(2, () => `child node ${child.describe()}`);
    const companyId = company();
    const ann = await group.connect(nodeA, { userId: "ann", companyId });
    const carol = await group.connect({ url: child.url }, { userId: "carol", companyId });
    for (const socket of [ann, carol]) await request(socket, "document:watch", report);
    const annHeard = collectScopedPresence(ann);
    await request(ann, "presence:join", { scope: report, state: {} });
    await request(carol, "presence:join", { scope: report, state: { editing: "notes" } });
    await waitFor(() => annHeard.length === 1, { message: "carol joined" });

    child.pause();
    try {
      await waitFor(() => annHeard.length === 2, { timeoutMs: TTL_MS * 4, message: "carol swept while her node stalls" });
      expect(annHeard[1]).toMatchObject({ change: "left", member: { userId: "carol" } });
    } finally {
      child.resume();
    }
    await waitFor(() => annHeard.length === 3, { timeoutMs: TTL_MS * 3, message: "carol announced back by her node's heartbeat" });
    expect(annHeard[2]).toMatchObject({ change: "joined", member: { userId: "carol", state: { editing: "notes" } } });
    expect(await members(nodeA, companyId)).toEqual(["ann", "carol"]);
    await sleep(TTL_MS);
    expect(annHeard).toHaveLength(3);
  });
});
