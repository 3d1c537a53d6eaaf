import { collect, requireRedisOrSkip, sleep, waitFor } from "@truss/test-utils";
import type { InboxMessage } from "@truss/protocol";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { company, user } from "./support/nodes.js";
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
  const unhandled: string[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(`unhandled rejection: ${reason instanceof Error ? reason.stack : String(reason)}`);
  const onUncaught = (error: Error) => void unhandled.push(`uncaught exception: ${error.stack}`);

  beforeAll(() => {
    process.on("unhandledRejection", onUnhandled);
    process.on("uncaughtException", onUncaught);
  });
  afterAll(() => {
    process.off("unhandledRejection", onUnhandled);
    process.off("uncaughtException", onUncaught);
  });
  afterEach(() => void (unhandled.length = 0));

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
    expect(unhandled).toEqual([]);
    // Logged once, however many came.
    expect(warnings.filter((warning) => warning.includes(`malformed "${event}"`))).toHaveLength(1);

    // Node B still hears node A: a message sent on A reaches the phone on B, and a revocation on A disconnects it.
    const sent = await nodeA.engine.toUser(acme, ann.userId).emit("expense:approved", { id: "e-1" });
    await waitFor(() => messages.some((message) => message.id === sent.id), { message: "the relayed message on node B" });
    expect(await nodeA.engine.disconnectUser(acme, ann.userId)).toEqual({ sockets: 1, complete: true });
    await waitFor(() => !phone.connected, { message: "the phone disconnected by the revocation" });
    expect(unhandled).toEqual([]);
  });
});
