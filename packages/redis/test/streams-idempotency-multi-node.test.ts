import { connect, type TrussClient } from "@truss/client";
import { redisStreamStore } from "@truss/redis";
import { requireRedisOrSkip, signToken, sleep, waitFor, type TestClaims } from "@truss/test-utils";
import { afterEach, describe, expect, test } from "vitest";
import { company, user } from "./support/nodes.js";
import { redisNodes } from "./support/redis-nodes.js";

/** Long enough for a broadcast relayed through Redis on loopback to have arrived. */
const SETTLE_MS = 200;

/**
 * Idempotent company broadcasts on two engine nodes sharing one Redis, as
 * outbox relays on two nodes publish: a row published by both, or published
 * again after the node that stored it died before sending it, is stored once
 * and handed to a device once.
 */
describe.runIf(requireRedisOrSkip("@truss/redis multi-node idempotent broadcasts"))("idempotent broadcasts across two nodes", () => {
  const redis = redisNodes();
  const clients: TrussClient[] = [];

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
  });

  const startTwo = async () => {
    const group = redis.group();
    const [nodeA, nodeB] = [await group.start("A"), await group.start("B")];
    await group.adaptersReady();
    return { group, nodeA, nodeB };
  };

  /** A @truss/client device with what its app was handed, in order. */
  const device = async (url: string, claims: TestClaims & { deviceId: string }) => {
    const client = connect(url, {
      token: signToken(claims),
      deviceId: claims.deviceId,
      reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
      socketOptions: { transports: ["websocket"] },
    });
    clients.push(client);
    const heard: unknown[] = [];
    client.on("expense:approved", (data) => void heard.push(data));
    await waitFor(() => client.status === "connected", { message: "the device to connect" });
    return heard;
  };

  test("both nodes publishing one row at once store it once, resolve one position, and each device is handed it once", async () => {
    const { nodeA, nodeB } = await startTwo();
    const tenant = company();
    const onA = await device(nodeA.url, { userId: user(), companyId: tenant, deviceId: "on-a" });
    const onB = await device(nodeB.url, { userId: user(), companyId: tenant, deviceId: "on-b" });

    const rows = Array.from({ length: 20 }, (_, n) => ({ id: `row-${n}`, data: { expenseId: `e-${n}` } }));
    const positions = await Promise.all(
      rows.flatMap((row) => [nodeA, nodeB].map((node) => node.engine.toCompany(tenant).emit("expense:approved", row.data, { idempotencyKey: row.id }))),
    );
    for (let n = 0; n < rows.length; n++) expect(positions[2 * n + 1], `row ${n} resolves one position on both nodes`).toEqual(positions[2 * n]);
    expect(new Set(positions.map((position) => position!.offset))).toEqual(new Set(Array.from({ length: 20 }, (_, n) => n + 1)));

    await waitFor(() => onA.length === 20 && onB.length === 20, { message: "every row on both devices" });
    await sleep(SETTLE_MS);
    const byOffset = rows
      .map((row, n) => ({ offset: positions[2 * n]!.offset, data: row.data }))
      .sort((a, b) => a.offset - b.offset)
      .map(({ data }) => data);
    expect(onA).toEqual(byOffset);
    expect(onB).toEqual(byOffset);
  });

  test("a row stored by a node that died before sending it reaches devices on both nodes when the other node publishes it again, once", async () => {
    const { group, nodeA, nodeB } = await startTwo();
    const tenant = company();
    const onA = await device(nodeA.url, { userId: user(), companyId: tenant, deviceId: "on-a" });
    const onB = await device(nodeB.url, { userId: user(), companyId: tenant, deviceId: "on-b" });
    const first = await nodeA.engine.toCompany(tenant).emit("expense:approved", { expenseId: "e-0" }, { idempotencyKey: "row-0" });
    await waitFor(() => onA.length === 1 && onB.length === 1, { message: "the first row on both devices" });

    // Node A's relay stored row 1 in the shared stream, then died before the engine sent it.
    const store = redisStreamStore({ redis: nodeA.storeClient, prefix: group.prefix });
    const orphan = await store.append({ companyId: tenant, stream: "company" }, "expense:approved", { expenseId: "e-1" }, { idempotencyKey: "row-1" });
    await sleep(SETTLE_MS);
    expect([onA.length, onB.length]).toEqual([1, 1]);

    // Node B's relay claims the row and publishes it again: nothing new is stored, both devices get it now.
    const again = await nodeB.engine.toCompany(tenant).emit("expense:approved", { expenseId: "e-1" }, { idempotencyKey: "row-1" });
    expect(again).toEqual({ stream: "company", epoch: first!.epoch, offset: orphan.entry.offset });
    await waitFor(() => onA.length === 2 && onB.length === 2, { timeoutMs: 1000, message: "the orphaned row, sent by the repeat" });
    // And once more, as a relay that crashed before marking the row done would.
    expect(await nodeA.engine.toCompany(tenant).emit("expense:approved", { expenseId: "e-1" }, { idempotencyKey: "row-1" })).toEqual(again);
    await nodeA.engine.toCompany(tenant).emit("expense:approved", { expenseId: "e-2" }, { idempotencyKey: "row-2" });
    await waitFor(() => onA.length === 3 && onB.length === 3, { message: "the next row" });
    await sleep(SETTLE_MS);
    const expected = [{ expenseId: "e-0" }, { expenseId: "e-1" }, { expenseId: "e-2" }];
    expect(onA).toEqual(expected);
    expect(onB).toEqual(expected);
    expect((await store.read({ companyId: tenant, stream: "company" }, 0, 10)).top).toBe(3);
  });
});
