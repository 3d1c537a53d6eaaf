import { collect, requireRedisOrSkip, sleep, startTcpProxy, type TcpProxy } from "@truss/test-utils";
import type { ErrorPayload } from "@truss/protocol";
import type { Socket as ClientSocket } from "socket.io-client";
import { afterEach, describe, expect, test } from "vitest";
import { company, user, type EngineNode } from "./support/nodes.js";
import { redisNodes } from "./support/redis-nodes.js";

/**
 * A device cut as a slow consumer on node B, that reconnects to node A, is
 * told why there: the nodes tell each other of a cut, and of the notice once
 * it was given, so the device hears it once whichever node it lands on.
 */
describe.runIf(requireRedisOrSkip("@truss/redis multi-node slow consumer tests"))("slow consumers across nodes", () => {
  const redis = redisNodes();
  let proxy: TcpProxy | undefined;

  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  /**
   * Waits until `from`'s earlier server-side events reached every other node:
   * a revocation of nobody is answered by each node after the events it sent
   * before, on the same channel.
   */
  const delivered = async (from: EngineNode, companyId: string) => {
    expect(await from.engine.disconnectUser(companyId, user("nobody"))).toEqual({ sockets: 0, complete: true });
  };

  test("cut on node B, told on node A at the next connection, and not again on B", async () => {
    const group = redis.group({ engine: { limits: { maxBufferedBytes: 128 * 1024 } } });
    const [nodeA, nodeB] = await group.startTwo();
    const acme = company("acme");
    const tablet = { userId: user("site-lead"), companyId: acme, deviceId: "tablet" };

    proxy = await startTcpProxy(nodeB.port);
    await group.connect({ url: proxy.url }, tablet);
    const serverSide = [...nodeB.engine.io!.of("/").sockets.values()][0]!;
    proxy.stallDownstream();
    const payload = "s".repeat(16 * 1024);
    for (let burst = 0; burst < 400 && serverSide.connected; burst++) {
      for (let i = 0; i < 50; i++) nodeB.engine.toCompany(acme).emit("stock:updated", { payload });
      await sleep(20);
    }
    expect(serverSide.connected, "node B cut the stalled reader").toBe(false);
    proxy.cut();
    await delivered(nodeB, acme);

    const connectCollecting = async (node: EngineNode): Promise<{ socket: ClientSocket; errors: ErrorPayload[] }> => {
      const socket = group.client(node, tablet);
      const errors = collect<ErrorPayload>(socket, "error");
      await new Promise<void>((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("connect_error", reject);
        socket.connect();
      });
      // Answered after the connection's first packets: anything sent on connect came before.
      await new Promise((resolve) => socket.emit("presence:list", {}, resolve));
      return { socket, errors };
    };
    const onA = await connectCollecting(nodeA);
    expect(onA.errors).toEqual([{ code: "SLOW_CONSUMER", message: expect.stringMatching(/previous connection was cut/) }]);
    onA.socket.close();
    await delivered(nodeA, acme);

    const onB = await connectCollecting(nodeB);
    expect(onB.errors).toEqual([]);
    const againOnA = await connectCollecting(nodeA);
    expect(againOnA.errors).toEqual([]);
  }, 60_000);
});
