import {
  collect,
  connectError,
  request,
  signToken,
  signTokenAfter,
  sleep,
  startTcpProxy,
  waitFor,
  requireRedisOrSkip,
  startRedisServer,
  type TcpProxy,
} from "@truss/test-utils";
import type { Socket as ClientSocket } from "socket.io-client";
import { afterEach, describe, expect, test } from "vitest";
import { company, NodeGroup, user, type EngineNode } from "./support/nodes.js";
import { redisNodes } from "./support/redis-nodes.js";

/**
 * Topics and revocations across three engine nodes on one redis-server, with
 * classic and with sharded pub/sub: `toTopic` on one node reaches the topic's
 * subscribers on the others (and no other company's), and `disconnectUser` /
 * `unsubscribeUser` called on one node act on the user's sockets on every
 * node and report the total.
 */
describe.runIf(requireRedisOrSkip("@truss/redis multi-node revocation tests"))("topics and revocation across nodes", () => {
  const redis = redisNodes();

  for (const sharded of [false, true]) {
    describe(sharded ? "sharded pub/sub" : "classic pub/sub", () => {
      const start = async () => {
        const group = redis.group({ sharded, engine: { authorize: () => true, topics: { patterns: ["project:{projectId}"] } } });
        const [nodeA, nodeB, nodeC] = await group.startThree();
        await group.adaptersReady();
        return { group, nodeA, nodeB, nodeC };
      };

      test("disconnectUser on node A disconnects the user's devices on A and B, reports 3, and touches no one else", async () => {
        const { group, nodeA, nodeB, nodeC } = await start();
        const acme = company("acme");
        const globex = company("globex");
        const revoked = user("revoked");
        const devices = [
          await group.connect(nodeA, { userId: revoked, companyId: acme, deviceId: "laptop" }),
          await group.connect(nodeB, { userId: revoked, companyId: acme, deviceId: "phone" }),
          await group.connect(nodeB, { userId: revoked, companyId: acme, deviceId: "tablet" }),
        ];
        const bystanders = [
          await group.connect(nodeC, { userId: user("colleague"), companyId: acme }),
          // The same user id in another company is another user.
          await group.connect(nodeB, { userId: revoked, companyId: globex }),
        ];
        const errors = devices.map((socket) => collect<{ code: string }>(socket, "error"));
        const gone = devices.map(() => false);
        devices.forEach((socket, index) => socket.on("disconnect", () => (gone[index] = true)));

        const result = await nodeA.engine.disconnectUser(acme, revoked, { message: "Removed from Acme by a manager." });
        expect(result).toEqual({ sockets: 3, complete: true });
        await waitFor(() => gone.every(Boolean), { message: "every device disconnected" });
        for (const received of errors) expect(received).toEqual([{ code: "ACCESS_REVOKED", message: "Removed from Acme by a manager." }]);
        await sleep(100);
        for (const socket of bystanders) expect(socket.connected).toBe(true);
        expect(await nodeC.engine.disconnectUser(acme, revoked)).toEqual({ sockets: 0, complete: true });
      });

      test("toTopic on one node reaches subscribers on every node; unsubscribeUser on another ends the user's subscription everywhere", async () => {
        const { group, nodeA, nodeB, nodeC } = await start();
        const acme = company("acme");
        const globex = company("globex");
        const member = user("member");
        const colleague = user("colleague");
        const subscribe = async (node: EngineNode, userId: string, companyId: string): Promise<ClientSocket> => {
          const socket = await group.connect(node, { userId, companyId, deviceId: `${node.name}-${userId}` });
          expect(await request(socket, "topic:subscribe", { topic: "project:p1" })).toMatchObject({ ok: true, topic: "project:p1" });
          return socket;
        };
        const memberSockets = [await subscribe(nodeA, member, acme), await subscribe(nodeC, member, acme)];
        const colleagueSocket = await subscribe(nodeB, colleague, acme);
        const otherCompany = await subscribe(nodeB, member, globex);
        const heard = [...memberSockets, colleagueSocket].map((socket) => collect<{ seq: number }>(socket, "project:updated"));
        const leaked = collect(otherCompany, "project:updated");
        const dropped = memberSockets.map((socket) => collect(socket, "topic:dropped"));

        // The sharded adapter subscribes to a room's channel when a node first joins it: probe until every node hears.
        await waitFor(
          () => {
            nodeB.engine.toTopic(acme, "project:p1").emit("project:updated", { seq: 0 });
            return heard.every((received) => received.length > 0);
          },
          { intervalMs: 50, message: "a probe on every node" },
        );
        for (let seq = 1; seq <= 20; seq++) nodeB.engine.toTopic(acme, "project:p1").emit("project:updated", { seq });
        await waitFor(() => heard.every((received) => received.some((message) => message.seq === 20)), { message: "twenty topic messages everywhere" });

        expect(await nodeB.engine.unsubscribeUser(acme, member, "project:p1")).toEqual({ sockets: 2, complete: true });
        await waitFor(() => dropped.every((received) => received.length === 1));
        for (const received of dropped) expect(received).toEqual([{ topic: "project:p1", error: { code: "ACCESS_REVOKED", message: expect.any(String) } }]);
        const before = heard.map((received) => received.length);
        nodeA.engine.toTopic(acme, "project:p1").emit("project:updated", { seq: 21 });
        await waitFor(() => heard[2]!.some((message) => message.seq === 21));
        await sleep(200);
        expect(heard[0]).toHaveLength(before[0]!);
        expect(heard[1]).toHaveLength(before[1]!);
        expect(leaked).toEqual([]);
        for (const socket of memberSockets) expect(socket.connected).toBe(true);
      });
    });
  }

  describe("a node whose adapter subscription was cut when the revocation was made", () => {
    let proxy: TcpProxy | undefined;
    afterEach(async () => {
      await proxy?.close();
      proxy = undefined;
    });

    /** Node A, and node B whose subscriber reaches Redis through a proxy; B's store client does not. */
    const startPair = async (pollIntervalMs: number) => {
      proxy = await startTcpProxy(redis.server.port);
      const group = redis.group({ engine: { authorize: () => true, topics: { patterns: ["project:{projectId}"] }, revocationTiming: { pollIntervalMs } } });
      const nodeA = await group.start("A");
      const nodeB = await group.start("B", {}, { subscriberPort: proxy.port });
      await group.adaptersReady();
      return { group, nodeA, nodeB };
    };

    /** Cuts B's subscriber and holds its reconnection, until A's adapter no longer counts B. */
    const cutOff = async (nodeA: EngineNode) => {
      proxy!.hold();
      proxy!.cut();
      await waitFor(async () => (await nodeA.engine.io!.of("/").adapter.serverCount()) === 1, { message: "A's adapter to lose B" });
    };

    test("B disconnects the revoked user's sessions as soon as it resubscribes; the old token is refused, a new one gets in", async () => {
      // A poll far longer than the test: only the resubscription can make B act.
      const { group, nodeA, nodeB } = await startPair(60_000);
      const acme = company("acme");
      const revoked = user("revoked");
      const oldToken = signToken({ userId: revoked, companyId: acme });
      const laptop = await group.connect(nodeB, { userId: revoked, companyId: acme, deviceId: "laptop" }, { token: oldToken });
      const phone = await group.connect(nodeB, { userId: revoked, companyId: acme, deviceId: "phone" }, { token: oldToken });
      const bystander = await group.connect(nodeB, { userId: user("colleague"), companyId: acme });
      const laptopErrors = collect<{ code: string }>(laptop, "error");

      await cutOff(nodeA);
      const revokedAt = Date.now();
      expect(await nodeA.engine.disconnectUser(acme, revoked)).toEqual({ sockets: 0, complete: true });
      // B never heard it: its sockets of the user are still up.
      expect(laptop.connected && phone.connected).toBe(true);

      // A refresh on B reads the store: the session that missed the revocation ends there, whatever token it brings,
      // told why as every revoked session is (the refresh's answer goes with the socket).
      const phoneErrors = collect<{ code: string }>(phone, "error");
      const refreshed = request(phone, "auth:refresh", { token: await signTokenAfter(revokedAt, { userId: revoked, companyId: acme }) });
      await expect(refreshed).rejects.toThrow();
      expect(phone.disconnected).toBe(true);
      expect(phoneErrors).toEqual([{ code: "ACCESS_REVOKED", message: "Your access to this company was revoked." }]);

      const releasedAt = Date.now();
      proxy!.release();
      await waitFor(() => laptop.disconnected, { timeoutMs: 10_000, message: "B's laptop disconnected once B resubscribed" });
      expect(Date.now() - releasedAt).toBeLessThan(10_000);
      expect(laptopErrors).toEqual([{ code: "ACCESS_REVOKED", message: "Your access to this company was revoked." }]);
      expect(bystander.connected).toBe(true);

      for (const node of [nodeA, nodeB]) {
        expect((await connectError(node.url, { transports: ["websocket"], auth: { token: oldToken } })).data?.code, node.name).toBe("ACCESS_REVOKED");
      }
      const renewed = await group.connect(nodeB, { userId: revoked, companyId: acme }, { token: await signTokenAfter(revokedAt, { userId: revoked, companyId: acme }) });
      expect(renewed.connected).toBe(true);
    }, 30_000);

    test("B applies revocations within its poll interval while its subscriber stays cut off", async () => {
      const { group, nodeA, nodeB } = await startPair(500);
      const acme = company("acme");
      const revoked = user("revoked");
      const member = user("member");
      const gone = await group.connect(nodeB, { userId: revoked, companyId: acme });
      const subscribed = await group.connect(nodeB, { userId: member, companyId: acme });
      expect(await request(subscribed, "topic:subscribe", { topic: "project:p1" })).toMatchObject({ ok: true });
      const dropped = collect(subscribed, "topic:dropped");

      await cutOff(nodeA);
      const revokedAt = Date.now();
      expect(await nodeA.engine.disconnectUser(acme, revoked)).toMatchObject({ sockets: 0 });
      expect(await nodeA.engine.unsubscribeUser(acme, member, "project:p1")).toMatchObject({ sockets: 0 });

      await waitFor(() => gone.disconnected && dropped.length === 1, { message: "the user disconnected and the topic dropped on B" });
      expect(Date.now() - revokedAt).toBeLessThan(3_000);
      expect(dropped).toEqual([{ topic: "project:p1", error: { code: "ACCESS_REVOKED", message: 'Your access to "project:p1" was revoked.' } }]);
      expect(subscribed.connected).toBe(true);
      expect(await request(subscribed, "topic:subscribe", { topic: "project:p1" })).toMatchObject({ ok: false, error: { code: "ACCESS_REVOKED" } });
    }, 30_000);
  });

  test("with Redis unreachable, a revocation still acts on the local node and settles with complete: false", async () => {
    const own = await startRedisServer();
    const groups = [false, true].map((sharded) => new NodeGroup({ url: own.url }, { sharded }));
    try {
      const started = await Promise.all(groups.map(async (nodes) => [await nodes.start("A"), await nodes.start("B")] as const));
      await Promise.all(groups.map((nodes) => nodes.adaptersReady()));
      const acme = company("acme");
      const member = user("member");
      const local = await Promise.all(started.map(([nodeA], index) => groups[index]!.connect(nodeA, { userId: member, companyId: acme })));
      await own.stop();
      const startedAt = Date.now();
      const results = await Promise.all(started.map(([nodeA]) => nodeA.engine.disconnectUser(acme, member)));
      expect(results).toEqual([
        { sockets: 1, complete: false },
        { sockets: 1, complete: false },
      ]);
      expect(Date.now() - startedAt).toBeLessThan(8_000);
      await waitFor(() => local.every((socket) => !socket.connected));
    } finally {
      await Promise.all(groups.map((nodes) => nodes.closeAll()));
      await own.stop();
    }
  }, 30_000);
});
