import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireRedisOrSkip, startRedisServer, type RedisServer } from "@truss/test-utils";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { generateVapidKeys } from "../src/web-push.js";
import { call, login, startErp, type RunningErp } from "./helpers.js";
import { startPushService, type LocalPushService } from "./push-service.js";

/** How many calls of the undelivered handler a node made, from its `/metrics`. */
async function handlerCalls(node: RunningErp): Promise<number> {
  const response = await fetch(`${node.url}/metrics`);
  const line = (await response.text()).split("\n").find((entry) => entry.startsWith("truss_undelivered_calls_total"));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

/**
 * Two ERP nodes on one Redis and one SQLite file, both polling for messages
 * no device took: the inbox store hands each call to one node, so each
 * missed message is pushed once, not once per node.
 */
describe.runIf(requireRedisOrSkip("construction-erp undelivered Redis tests"))("two ERP nodes sharing Redis: each missed message is handled once", () => {
  let redis: RedisServer;
  let push: LocalPushService;
  let nodeA: RunningErp;
  let nodeB: RunningErp;
  let directory: string;

  beforeAll(async () => {
    redis = await startRedisServer();
    push = await startPushService();
    directory = mkdtempSync(join(tmpdir(), "truss-erp-undelivered-"));
    const shared = { redisUrl: redis.url, databasePath: join(directory, "erp.sqlite"), undelivered: { afterMs: 500, pollIntervalMs: 20, vapid: generateVapidKeys(), pushAgent: push.agent, pushOrigins: [push.origin] } };
    nodeA = await startErp({ ...shared, engine: { logger: false, nodeId: "node-a" } });
    nodeB = await startErp({ ...shared, engine: { logger: false, nodeId: "node-b" } });
  });
  afterAll(async () => {
    await nodeA?.close();
    await nodeB?.close();
    await push?.close();
    await redis?.stop();
    if (directory) rmSync(directory, { recursive: true, force: true });
  });

  test("Ben and Chloe, both offline with a browser registered, each get one push for their decision: two handler calls across both nodes", async () => {
    const [alice, ben, chloe] = await Promise.all([login(nodeA.url, "alice@northwind.test"), login(nodeB.url, "ben@northwind.test"), login(nodeB.url, "chloe@northwind.test")]);
    for (const user of [ben, chloe]) {
      const { endpoint, keys } = push.subscribe();
      expect((await call(nodeB.url, user.token, "POST", "/api/push-subscriptions", { endpoint, keys, deviceId: `${user.user.id}-phone` })).status).toBe(201);
    }
    expect((await call(nodeA.url, alice.token, "POST", "/api/expenses/e-pump/approve", {})).status).toBe(200);
    expect((await call(nodeA.url, alice.token, "POST", "/api/expenses/e-drone/reject", {})).status).toBe(200);

    await expect.poll(() => push.received.map((received) => received.payload.title).sort(), { timeout: 5000 }).toEqual(["Expense approved", "Expense rejected"]);
    await expect.poll(async () => (await handlerCalls(nodeA)) + (await handlerCalls(nodeB)), { timeout: 5000 }).toBe(2);
    // Many polls of both nodes later, nothing more.
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect((await handlerCalls(nodeA)) + (await handlerCalls(nodeB))).toBe(2);
    expect(push.received).toHaveLength(2);
    expect(push.refused).toEqual([]);
    const rows = (await call<any[]>(nodeB.url, alice.token, "GET", "/api/notifications-sent")).body;
    expect(rows.map((row) => `${row.userName}: ${row.channel}`).sort()).toEqual(["Ben Okafor: push", "Chloe Park: push"]);
  });
});
