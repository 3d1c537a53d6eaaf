import { once } from "node:events";
import { createConnection, createServer, type AddressInfo, type Socket } from "node:net";
import { connect, type StreamResync, type TrussClient } from "@truss/client";
import {
  requireRedisClusterOrSkip,
  requireRedisOrSkip,
  signToken,
  sleep,
  startRedisCluster,
  startRedisServer,
  waitFor,
  type RedisCluster,
  type RedisServer,
  type TestClaims,
} from "@truss/test-utils";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { company, NodeGroup, user, type EngineNode, type RedisTarget } from "./support/nodes.js";

/** A load balancer on 127.0.0.1 in front of the nodes: it sends each new connection to the node it points at. */
interface Balancer {
  readonly url: string;
  /** Sends new connections to `node` from now on. */
  pointAt(node: { port: number }): void;
  /** Destroys every open connection, as a dropped network would. */
  cut(): void;
  /** Holds new connections unanswered until {@link release}. */
  hold(): void;
  release(): void;
  close(): Promise<void>;
}

async function startBalancer(node: { port: number }): Promise<Balancer> {
  let target = node.port;
  let holding = false;
  const held: Socket[] = [];
  const open = new Set<Socket>();
  const forward = (client: Socket) => {
    const upstream = createConnection({ host: "127.0.0.1", port: target });
    open.add(client).add(upstream);
    const end = () => {
      open.delete(client);
      open.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
    client.pipe(upstream).pipe(client);
  };
  const listener = createServer((client) => (holding ? held.push(client) : forward(client)));
  listener.listen(0, "127.0.0.1");
  await once(listener, "listening");
  const { port } = listener.address() as AddressInfo;
  const balancer: Balancer = {
    url: `http://127.0.0.1:${port}`,
    pointAt: (next) => void (target = next.port),
    cut: () => {
      for (const socket of open) socket.destroy();
      open.clear();
    },
    hold: () => void (holding = true),
    release: () => {
      holding = false;
      for (const client of held.splice(0)) forward(client);
    },
    close: async () => {
      balancer.cut();
      for (const client of held.splice(0)) client.destroy();
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
  return balancer;
}

/** What a test broadcasts: who sent it and its number there. */
interface Tagged {
  node: string;
  n: number;
}
const key = ({ node, n }: Tagged) => `${node}${n}`;

/**
 * Recovery of company streams across engine nodes on one redis-server: a
 * device that comes back on another node, or after its node died, reads what
 * it missed from the shared Redis history, and devices on different nodes
 * hear one order however the nodes' publishes interleave.
 */
const TOPOLOGIES = [
  { name: "classic pub/sub", sharded: false, cluster: false },
  { name: "sharded pub/sub", sharded: true, cluster: false },
  { name: "a three-master Redis Cluster with sharded pub/sub", sharded: true, cluster: true },
] as const;

for (const { name, sharded, cluster } of TOPOLOGIES) describe.runIf(
  cluster ? requireRedisClusterOrSkip("@truss/redis multi-node recovery on Redis Cluster") : requireRedisOrSkip("@truss/redis multi-node recovery tests"),
)(`stream recovery across nodes, ${name}`, () => {
  let server: RedisServer | RedisCluster;
  let target: RedisTarget;
  let group: NodeGroup | undefined;
  let clients: TrussClient[] = [];
  let balancers: Balancer[] = [];

  beforeAll(async () => {
    if (cluster) {
      const started = await startRedisCluster();
      server = started;
      target = { cluster: started.nodes };
    } else {
      const started = await startRedisServer();
      server = started;
      target = { url: started.url };
    }
  }, 60_000);
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    for (const balancer of balancers.splice(0)) await balancer.close();
    await group?.closeAll();
    group = undefined;
  });
  afterAll(async () => {
    await server?.stop();
  });

  const startTwo = async (): Promise<[EngineNode, EngineNode]> => {
    group = new NodeGroup(target, { sharded });
    const nodes: [EngineNode, EngineNode] = [await group.start("A"), await group.start("B")];
    await group.adaptersReady();
    return nodes;
  };

  const startThree = async (): Promise<[EngineNode, EngineNode, EngineNode]> => {
    group = new NodeGroup(target, { sharded });
    const nodes = await group.startThree();
    await group.adaptersReady();
    return nodes;
  };

  const balancer = async (node: EngineNode) => {
    const started = await startBalancer(node);
    balancers.push(started);
    return started;
  };

  /** A @truss/client device with what its app heard, in order. */
  const device = async (url: string, claims: TestClaims) => {
    const client = connect(url, {
      token: signToken({ userId: claims.userId, companyId: claims.companyId }),
      deviceId: claims.deviceId ?? "device",
      reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
      socketOptions: { transports: ["websocket"] },
    });
    clients.push(client);
    const heard: string[] = [];
    const resynced: StreamResync[] = [];
    client.on("stock:updated", (data) => void heard.push(key(data as Tagged)));
    client.onResync((resync) => resynced.push(resync));
    await waitFor(() => client.status === "connected", { message: "the device to connect" });
    return { client, heard, resynced };
  };

  const send = (node: EngineNode, tenant: string, n: number) => node.engine.toCompany(tenant).emit("stock:updated", { node: node.name, n });

  test("a device that reconnects through the balancer to another node gets what it missed once, in order, then live ones", async () => {
    const [nodeA, nodeB] = await startTwo();
    const tenant = company();
    const front = await balancer(nodeA);
    const phone = await device(front.url, { userId: user(), companyId: tenant, deviceId: "phone" });
    const expected: string[] = [];
    const sendAndExpect = async (node: EngineNode, n: number) => {
      await send(node, tenant, n);
      expected.push(`${node.name}${n}`);
    };
    await sendAndExpect(nodeA, 0);
    await waitFor(() => phone.heard.length === 1, { message: "the first broadcast" });

    front.hold();
    front.cut();
    front.pointAt(nodeB);
    await waitFor(() => phone.client.status === "reconnecting", { message: "the device to notice the cut" });
    for (let n = 1; n <= 50; n++) await sendAndExpect(n % 2 ? nodeA : nodeB, n);
    front.release();
    await waitFor(() => phone.heard.length === expected.length && !phone.client.recovering, { timeoutMs: 10_000, message: "the catch-up" });
    for (let n = 51; n <= 60; n++) await sendAndExpect(n % 2 ? nodeA : nodeB, n);
    await waitFor(() => phone.heard.length === expected.length, { timeoutMs: 10_000, message: "live broadcasts after it" });
    await sleep(200);

    expect(phone.heard).toEqual(expected);
    expect(phone.resynced).toEqual([]);
    expect(nodeB.engine.io!.of("/").sockets.size).toBe(1);
  });

  test("a device whose node is shut down reconnects to the other and gets everything, from both nodes, once and in order", async () => {
    const [nodeA, nodeB] = await startTwo();
    const tenant = company();
    const front = await balancer(nodeA);
    const phone = await device(front.url, { userId: user(), companyId: tenant, deviceId: "phone" });
    const expected: string[] = [];
    for (let n = 0; n < 50; n++) {
      await send(nodeA, tenant, n);
      expected.push(`A${n}`);
    }
    await waitFor(() => phone.heard.length === 50, { message: "node A's broadcasts" });

    // Node B keeps broadcasting while A goes down and the device moves over.
    const publishing = (async () => {
      for (let n = 50; n < 350; n++) {
        await send(nodeB, tenant, n);
        expected.push(`B${n}`);
        if (n % 10 === 0) await sleep(5);
      }
    })();
    await waitFor(() => phone.heard.length > 100, { message: "some of B's broadcasts live" });
    front.pointAt(nodeB);
    await nodeA.close();
    await publishing;
    await waitFor(() => phone.heard.length === expected.length && !phone.client.recovering, { timeoutMs: 10_000, message: "every broadcast" });
    await sleep(200);

    expect(phone.heard).toEqual(expected);
    expect(phone.resynced).toEqual([]);
    expect(nodeB.engine.io!.of("/").sockets.size).toBe(1);
  });

  test("a device that connects, or subscribes a topic, while two nodes publish at once gets every message after the stream's start, in order", async () => {
    group = new NodeGroup(target, { sharded, engine: { authorize: () => true } });
    const [nodeA, nodeB] = [await group.start("A"), await group.start("B")];
    await group.adaptersReady();
    // Node B's own broadcast reaches its device before A's earlier one, relayed through Redis, often enough
    // that a device guessing its start from the first message it hears lost one in most of these rounds.
    for (let round = 0; round < 6; round++) {
      const tenant = company();
      const topic = round % 2 === 1 ? `project:round-${round}` : null;
      const offsets = new Map<string, number>();
      const publish = (node: EngineNode) =>
        (async () => {
          for (let n = 0; n < 30; n++) {
            const data = { node: node.name, n };
            const position = topic ? await node.engine.toTopic(tenant, topic).emit("stock:updated", data) : await send(node, tenant, n);
            offsets.set(key(data), position!.offset);
          }
        })();
      const client = connect(nodeB.url, {
        token: signToken({ userId: user(), companyId: tenant }),
        deviceId: "fresh-phone",
        socketOptions: { transports: ["websocket"] },
      });
      clients.push(client);
      const heard: string[] = [];
      client.on("stock:updated", (data) => void heard.push(key(data as Tagged)));
      let startTop = 0;
      client.socket.on("stream:start", (start: { top: number }) => void (topic ? undefined : (startTop = start.top)));
      let publishing: Promise<unknown>;
      if (topic) {
        await waitFor(() => client.status === "connected", { message: "the device to connect" });
        await client.subscribe(topic);
        publishing = Promise.all([publish(nodeA), publish(nodeB)]);
      } else {
        // The device connects in the middle of both nodes' publishing.
        publishing = Promise.all([publish(nodeA), publish(nodeB)]);
        await waitFor(() => client.status === "connected", { message: "the device to connect" });
      }
      await publishing;
      const expected = [...offsets.entries()].filter(([, offset]) => offset > startTop).sort(([, a], [, b]) => a - b).map(([name]) => name);
      await waitFor(() => heard.length >= expected.length && !client.recovering, { timeoutMs: 10_000, message: `round ${round}: ${expected.length} messages (have ${heard.length})` });
      await sleep(200);
      expect(heard, `round ${round}`).toEqual(expected);
      client.close();
    }
  });

  test("two nodes publishing 1,000 broadcasts each at once: devices on three nodes hear one order, contiguous, none lost, through a cut", async () => {
    const [nodeA, nodeB, nodeC] = await startThree();
    const tenant = company();
    const front = await balancer(nodeA);
    const devices = [
      await device(front.url, { userId: user(), companyId: tenant, deviceId: "behind-the-balancer" }),
      await device(nodeB.url, { userId: user(), companyId: tenant, deviceId: "on-b" }),
      await device(nodeC.url, { userId: user(), companyId: tenant, deviceId: "on-c" }),
    ];
    // A first broadcast gives every device its place in the stream: what follows is recoverable.
    const offsets = new Map<string, number>();
    const first = await send(nodeC, tenant, 0);
    offsets.set("C0", first!.offset);
    await waitFor(() => devices.every(({ heard }) => heard.length === 1), { message: "the first broadcast everywhere" });

    const publish = async (node: EngineNode) => {
      for (let n = 1; n <= 1000; n++) {
        const position = await send(node, tenant, n);
        offsets.set(`${node.name}${n}`, position!.offset);
        if (n % 25 === 0) await sleep(5);
      }
    };
    const publishing = Promise.all([publish(nodeA), publish(nodeB)]);
    await waitFor(() => devices[0]!.heard.length > 500, { timeoutMs: 10_000, message: "half the broadcasts" });
    front.cut();
    front.pointAt(nodeC);
    await publishing;
    await waitFor(() => devices.every(({ heard, client }) => heard.length >= 2001 && !client.recovering), {
      timeoutMs: 15_000,
      message: "every broadcast on every device",
    });
    await sleep(300);

    const inOffsetOrder = [...offsets.entries()].sort(([, a], [, b]) => a - b);
    const start0 = first!.offset;
    expect(inOffsetOrder.map(([, offset]) => offset)).toEqual(Array.from({ length: 2001 }, (_, index) => start0 + index));
    for (const { heard, resynced } of devices) {
      expect(resynced).toEqual([]);
      expect(heard).toEqual(inOffsetOrder.map(([name]) => name));
    }
  });
});
