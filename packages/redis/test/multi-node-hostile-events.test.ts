import { createRequire } from "node:module";
import {
  collect,
  recordUnhandled,
  request,
  requireRedisClusterOrSkip,
  requireRedisOrSkip,
  sleep,
  startRedisCluster,
  startRedisServer,
  waitFor,
  type RedisCluster,
  type RedisServer,
  type UnhandledRecord,
} from "@truss/test-utils";
import type { InboxMessage } from "@truss/protocol";
import { Cluster, Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { company, NodeGroup, user, type RedisTarget } from "./support/nodes.js";
import { redisNodes } from "./support/redis-nodes.js";

/**
 * What one node sends the others (an inbox relay, a revocation, a slow
 * consumer's cut) arriving malformed, as from a node of another release or
 * with a bug: the receiving node drops it, nothing goes unhandled or
 * uncaught (which would end every node at once, since every node gets it),
 * and it goes on serving: a message from the other node still reaches its
 * device, a revocation still disconnects.
 */
describe.runIf(requireRedisOrSkip("@truss/redis malformed node-to-node events tests"))("malformed events from another node", () => {
  const redis = redisNodes();
  let unhandled: UnhandledRecord;

  beforeAll(() => {
    unhandled = recordUnhandled();
  });
  afterAll(() => unhandled.stop());
  afterEach(() => void unhandled.take());

  /** The events nodes send each other, by name. */
  const EVENTS = ["truss:inbox", "truss:revoke", "truss:slow-consumer"] as const;
  /** Argument lists no node of this release sends (all of them survive the adapter's encoding). */
  const MALFORMED: unknown[][] = [
    [],
    [null],
    [null, null, null],
    [42, "x"],
    [{}, {}],
    ["acme", "alice"],
    [{ companyId: 7, userId: [] }, { id: {}, event: 5 }],
    [{ companyId: "acme", userId: "alice" }, { id: "not-an-id", event: "expense:approved", ts: "now" }, "yes"],
    [{ companyId: "acme", userId: "alice" }, null, true],
    [{ companyId: "acme", userId: "alice", deviceId: 9 }, { kind: "user", at: "yesterday" }],
    [{ kind: "topic", companyId: "acme", userId: "alice", topic: 12, at: 1 }],
    [{ deviceKey: null, at: Number.NaN }],
    [[1, 2, 3], { nested: { deeper: [null] } }],
  ];

  test.each(EVENTS)("%s: every malformed shape is dropped; the node serves on and goes on hearing the other", async (event) => {
    const warnings: string[] = [];
    const group = redis.group({ engine: { logger: { warn: (message) => void warnings.push(message), error() {} } } });
    const [nodeA, nodeB] = await group.startTwo();
    const acme = company("acme");
    const ann = { userId: user("ann"), companyId: acme, deviceId: "phone" };
    const phone = await group.connect(nodeB, ann);
    const messages = collect<InboxMessage>(phone, "inbox:message");

    const namespaceA = nodeA.engine.io!.of("/");
    for (const args of MALFORMED) namespaceA.serverSideEmit(event, ...args);
    // Node A's own events, sent after the malformed ones on the same channel: once B answers them, B has read the rest.
    expect(await nodeA.engine.disconnectUser(acme, user("nobody"))).toEqual({ sockets: 0, complete: true });
    await sleep(50);
    expect(unhandled.take()).toEqual([]);
    // Logged once, however many came.
    expect(warnings.filter((warning) => warning.includes(`malformed "${event}"`))).toHaveLength(1);

    // Node B still hears node A: a message sent on A reaches the phone on B, and a revocation on A disconnects it.
    const sent = await nodeA.engine.toUser(acme, ann.userId).emit("expense:approved", { id: "e-1" });
    await waitFor(() => messages.some((message) => message.id === sent.id), { message: "the relayed message on node B" });
    expect(await nodeA.engine.disconnectUser(acme, ann.userId)).toEqual({ sockets: 1, complete: true });
    await waitFor(() => !phone.connected, { message: "the phone disconnected by the revocation" });
    expect(unhandled.take()).toEqual([]);
  });
});

/** The adapter's own msgpack codec (`notepack.io`, which `@socket.io/redis-adapter` depends on), to write frames as a node does. */
const msgpack = createRequire(createRequire(import.meta.url).resolve("@socket.io/redis-adapter"))("notepack.io") as { encode(value: unknown): Buffer };
const json = (value: unknown) => Buffer.from(JSON.stringify(value));

/** A hostile frame: what it is, the channel (the adapter's channel prefix in front) and its bytes. */
type Frame = [label: string, channel: string, payload: Buffer];

/**
 * Frames the classic adapter cannot handle, on its broadcast (`<prefix>#/#`,
 * a room's `<prefix>#/#<room>#`), request and response channels; `room` is a
 * room every node has. Request types: 0 SOCKETS, 2 REMOTE_JOIN, 5
 * REMOTE_FETCH, 6 SERVER_SIDE_EMIT, 7 BROADCAST.
 */
const classicFrames = (prefix: string, room: string): Frame[] => {
  const [broadcast, requests, responses] = [`${prefix}#/#`, `${prefix}-request#/#`, `${prefix}-response#/#`];
  return [
    ["bad msgpack", broadcast, Buffer.from([0xc1])],
    ["msgpack nil", broadcast, msgpack.encode(null)],
    ["a broadcast without options", broadcast, msgpack.encode(["zz", { type: 2, nsp: "/", data: ["x", 1] }])],
    ["truncated msgpack on a room's channel", `${broadcast}${room}#`, Buffer.from([0x93, 0xa2, 0x7a])],
    ["a broadcast to rooms: 5", broadcast, msgpack.encode(["zz", { type: 2, nsp: "/", data: ["x"] }, { rooms: 5 }])],
    ["a request of msgpack nil", requests, msgpack.encode(null)],
    ["SOCKETS in rooms: 5", requests, json({ type: 0, requestId: "r1", rooms: 5 })],
    ["REMOTE_FETCH without options", requests, json({ type: 5, requestId: "r2" })],
    ["SERVER_SIDE_EMIT whose data is a string", requests, json({ type: 6, uid: "zz", data: "truss:inbox" })],
    ["SERVER_SIDE_EMIT with an ack and data: 5", requests, json({ type: 6, uid: "zz", requestId: "q", data: 5 })],
    ["BROADCAST without options", requests, json({ type: 7, requestId: "b", packet: { type: 2, data: ["x"] } })],
    ["REMOTE_JOIN with opts.rooms: 7", requests, json({ type: 2, opts: { rooms: 7 }, rooms: ["x"] })],
    ["REMOTE_JOIN of a room that is not a string", requests, json({ type: 2, opts: { rooms: [room] }, rooms: [7] })],
    ["a response of msgpack nil", responses, msgpack.encode(null)],
  ];
};

/**
 * Frames the sharded adapter cannot handle, on its channel (`<prefix>#/#`)
 * and a room's (`<prefix>#/#<room>#`). Message types: 3 BROADCAST, 4
 * SOCKETS_JOIN, 8 FETCH_SOCKETS_RESPONSE, 9 SERVER_SIDE_EMIT.
 */
const shardedFrames = (prefix: string, room: string): Frame[] => {
  const [channel, roomChannel] = [`${prefix}#/#`, `${prefix}#/#${room}#`];
  const from = { uid: "zz", nsp: "/" };
  return [
    ["bad msgpack", channel, Buffer.from([0xc1])],
    ["JSON null", channel, Buffer.from("null")],
    ["a BROADCAST without data", channel, json({ ...from, type: 3 })],
    ["a BROADCAST without options", channel, json({ ...from, type: 3, data: { packet: { type: 2, data: ["x"] } } })],
    ["a BROADCAST to rooms: 5", channel, json({ ...from, type: 3, data: { packet: { type: 2, data: ["x"] }, opts: { rooms: 5, except: [] } } })],
    ["SERVER_SIDE_EMIT whose packet is a string", channel, json({ ...from, type: 9, data: { packet: "x" } })],
    ["SERVER_SIDE_EMIT with an ack and packet: 7", channel, json({ ...from, type: 9, data: { packet: 7, requestId: "q" } })],
    ["a response without data", channel, json({ ...from, type: 8 })],
    ["SOCKETS_JOIN of a room that is not a string", channel, json({ ...from, type: 4, data: { opts: { rooms: [room], except: [] }, rooms: [7] } })],
    ["JSON null on a room's channel", roomChannel, Buffer.from("null")],
    ["a BROADCAST without data on a room's channel", roomChannel, json({ ...from, type: 3 })],
  ];
};

/** Where the adapter frames are published, and what each adapter warns about. */
const TOPOLOGIES = [
  { name: "classic pub/sub", sharded: false, cluster: false, frames: classicFrames, kinds: ["broadcast channel", "request and response channels"] },
  { name: "sharded pub/sub", sharded: true, cluster: false, frames: shardedFrames, kinds: ["sharded channels"] },
  { name: "a three-master Redis Cluster with sharded pub/sub", sharded: true, cluster: true, frames: shardedFrames, kinds: ["sharded channels"] },
] as const;

/**
 * Frames published on the Socket.IO adapter's own Redis channels that the
 * adapter cannot handle, as from a client that can publish there: each node
 * drops them (one warning per kind of channel), nothing goes unhandled or
 * uncaught (which would end every node at once), no socket is left in a room
 * that is not a string, and the nodes go on hearing each other.
 */
for (const { name, sharded, cluster, frames, kinds } of TOPOLOGIES) describe.runIf(
  cluster ? requireRedisClusterOrSkip("@truss/redis malformed adapter frames on Redis Cluster") : requireRedisOrSkip("@truss/redis malformed adapter frames tests"),
)(`malformed frames on the adapter's channels, ${name}`, () => {
  let server: RedisServer | RedisCluster;
  let target: RedisTarget;
  let group: NodeGroup | undefined;
  let unhandled: UnhandledRecord;
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => void (warning.name === "TrussRedisAdapterWarning" && warnings.push(warning));

  beforeAll(async () => {
    unhandled = recordUnhandled();
    process.on("warning", onWarning);
    if (cluster) {
      const started = await startRedisCluster();
      [server, target] = [started, { cluster: started.nodes }];
    } else {
      const started = await startRedisServer();
      [server, target] = [started, { url: started.url }];
    }
  }, 60_000);
  afterEach(async () => {
    await group?.closeAll();
    group = undefined;
  });
  afterAll(async () => {
    unhandled.stop();
    process.off("warning", onWarning);
    await server?.stop();
  });

  /** A client that publishes where the nodes' adapters listen. */
  const publisher = () => ("url" in target ? new Redis(target.url) : new Cluster(target.cluster));

  test("three nodes drop every one, each warned once per kind of channel, and serve on", async () => {
    group = new NodeGroup(target, { sharded, engine: { authorize: () => true, topics: { patterns: ["project:{projectId}"] } } });
    const nodes = await group.startThree();
    await group.adaptersReady();
    const acme = company("acme");
    const clients = await Promise.all(nodes.map((node) => group!.connect(node, { userId: user(node.name), companyId: acme })));
    const heard = clients.map((socket) => collect<{ n: number }>(socket, "site:update"));
    const everyoneHeard = (n: number) => heard.every((received) => received.some((update) => update.n === n));
    // The sharded adapter subscribes to a room's channel once a node has the room: probe until every node hears.
    await waitFor(() => (nodes[0].engine.toCompany(acme).emit("site:update", { n: 0 }), everyoneHeard(0)), { intervalMs: 50, message: "a probe on every node" });

    const hostile = publisher();
    try {
      // The company's room, as the engine names it: every node has it.
      for (const [, channel, payload] of frames(group.prefix, `company:${acme}`)) {
        await (sharded ? hostile.spublish(channel, payload) : hostile.publish(channel, payload));
      }
    } finally {
      hostile.disconnect();
    }
    // Sent after the frames on the channels they came on: once every node has answered and heard, each has read them all.
    expect(await nodes[1].engine.disconnectUser(acme, user("nobody"))).toEqual({ sockets: 0, complete: true });
    nodes[1].engine.toCompany(acme).emit("site:update", { n: 1 });
    await waitFor(() => everyoneHeard(1), { message: "the broadcast after the frames on every node" });
    await sleep(50);
    expect(unhandled.take()).toEqual([]);
    for (const socket of clients) {
      expect(socket.connected).toBe(true);
      // A socket holding a room that is not a string fails here, where the engine reads its rooms.
      expect(await request(socket, "topic:subscribe", { topic: "project:p1" })).toMatchObject({ ok: true });
    }
    for (const kind of kinds) expect(warnings.filter((warning) => warning.message.includes(kind))).toHaveLength(nodes.length);
    expect(warnings).toHaveLength(kinds.length * nodes.length);
  });
});
