import type { InboxMessage } from "@truss/protocol";
import { collect, open, request, sleep, waitFor } from "@truss/test-utils";
import { afterEach, expect, test } from "vitest";
import { company, user, type EngineNode, type NodeGroup } from "./nodes.js";

/** A started group of three nodes. */
export interface ThreeNodes {
  group: NodeGroup;
  nodes: [EngineNode, EngineNode, EngineNode];
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, index) => from + index);

/**
 * Company broadcasts and user inboxes across three engine nodes. Registered
 * once per topology (one redis-server with classic pub/sub, a Redis Cluster
 * with sharded pub/sub); `startGroup` starts a group of three nodes.
 */
export function registerMessagingCases(startGroup: () => Promise<ThreeNodes>): void {
  let group: NodeGroup | undefined;
  afterEach(async () => {
    await group?.closeAll();
    group = undefined;
  });

  test("a company broadcast sent on node A reaches that company's clients on B and C, in order, and no other company's", async () => {
    const started = await startGroup();
    group = started.group;
    const [nodeA, nodeB, nodeC] = started.nodes;
    const acme = company("acme");
    const buildCo = company("buildco");
    const members = [
      await group.connect(nodeA, { userId: user(), companyId: acme }),
      await group.connect(nodeB, { userId: user(), companyId: acme }),
      await group.connect(nodeC, { userId: user(), companyId: acme }),
    ];
    const outsiders = [
      await group.connect(nodeB, { userId: user(), companyId: buildCo }),
      await group.connect(nodeC, { userId: user(), companyId: buildCo }),
    ];
    const heard = members.map((socket) => collect<{ seq?: number; probe?: true }>(socket, "project:updated"));
    const leaked = outsiders.map((socket) => collect(socket, "project:updated"));

    // Subscriptions are made asynchronously (the sharded adapter subscribes
    // to a room's channel when the room is first joined on a node): probe
    // until every member has heard one before the sequence that counts.
    await waitFor(
      () => {
        nodeA.engine.toCompany(acme).emit("project:updated", { probe: true });
        return heard.every((received) => received.length > 0);
      },
      { intervalMs: 50, message: "a probe broadcast on every node" },
    );
    for (const seq of range(1, 20)) nodeA.engine.toCompany(acme).emit("project:updated", { seq });
    await waitFor(() => heard.every((received) => received.some((payload) => payload.seq === 20)), {
      message: "all twenty broadcasts on every node",
    });
    await sleep(200);
    for (const received of heard) {
      expect(received.filter((payload) => payload.seq !== undefined).map((payload) => payload.seq)).toEqual(range(1, 20));
    }
    expect(leaked).toEqual([[], []]);
  });

  test("toUser on node A reaches the user's device on node B; a device offline during the sends reconnects to node C and gets every message once, in order", async () => {
    const started = await startGroup();
    group = started.group;
    const [nodeA, nodeB, nodeC] = started.nodes;
    await group.adaptersReady();
    const claims = { userId: user("ann"), companyId: company() };
    const send = (n: number) => nodeA.engine.toUser(claims.companyId, claims.userId).emit("expense:approved", { n });

    const phone = group.client(nodeB, { ...claims, deviceId: "phone" });
    const onPhone = collect<InboxMessage>(phone, "inbox:message");
    await open(phone);

    // The tablet is online on A for the first message, acknowledges it and leaves.
    const tabletOnA = group.client(nodeA, { ...claims, deviceId: "tablet" });
    const onTabletA = collect<InboxMessage>(tabletOnA, "inbox:message");
    await open(tabletOnA);
    const first = await send(0);
    await waitFor(() => onTabletA.length === 1 && onPhone.length === 1, { message: "the first message on both devices" });
    expect((await request(tabletOnA, "inbox:ack", { ids: [first.id] })).ok).toBe(true);
    tabletOnA.close();

    const sent: InboxMessage[] = [first];
    for (const n of range(1, 20)) sent.push(await send(n));

    // It comes back on C while A keeps sending: the replay and live messages
    // relayed from A overlap, and the device must still see each id once, in order.
    const tabletOnC = group.client(nodeC, { ...claims, deviceId: "tablet" });
    const onTabletC = collect<InboxMessage>(tabletOnC, "inbox:message");
    const sending = (async () => {
      for (const n of range(21, 40)) {
        sent.push(await send(n));
        await sleep(5);
      }
    })();
    await open(tabletOnC);
    await sending;
    await waitFor(() => onTabletC.length >= 40 && onPhone.length >= 41, { message: "every message on both devices" });
    await sleep(300);

    expect(onTabletC.map((message) => message.id)).toEqual(sent.slice(1).map((message) => message.id));
    expect(onTabletC.map((message) => (message.data as { n: number }).n)).toEqual(range(1, 40));
    expect(onPhone.map((message) => message.id)).toEqual(sent.map((message) => message.id));
    expectIncreasing(onPhone);
  });
}

/** Inbox ids are `<ms>-<seq>` and must strictly increase. */
function expectIncreasing(messages: readonly InboxMessage[]): void {
  const key = (id: string) => id.split("-").map((part) => BigInt(part)) as [bigint, bigint];
  for (let index = 1; index < messages.length; index += 1) {
    const [ms, seq] = key(messages[index]!.id);
    const [previousMs, previousSeq] = key(messages[index - 1]!.id);
    expect(ms > previousMs || (ms === previousMs && seq > previousSeq), `${messages[index]!.id} after ${messages[index - 1]!.id}`).toBe(true);
  }
}
