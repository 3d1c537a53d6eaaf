import { connect, type TrussClient } from "@truss/client";
import type { UndeliveredCall, UndeliveredOptions } from "@truss/core";
import type { InboxMessage } from "@truss/protocol";
import { signToken, sleep, startTestServer, waitFor, type TestServer } from "@truss/test-utils";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { postgresStores } from "../../src/stores/index.js";
import { freshSchema, SHARED_POSTGRES, type FreshSchema } from "../support/postgres.js";

/**
 * The undelivered hook on two engine nodes sharing PostgreSQL: each call is
 * claimed in `inbox_undelivered`, so it is made once whichever node polls;
 * a device that takes the message (`@truss/client` acknowledges it) cancels
 * it; a node that stops mid-call leaves it to the other after the lease.
 */
describe("undelivered calls on two nodes sharing PostgreSQL", () => {
  let db: FreshSchema;
  const pools: pg.Pool[] = [];
  let nodes: TestServer[] = [];
  let client: TrussClient | undefined;

  const startNode = async (undelivered: UndeliveredOptions) => {
    const pool = new pg.Pool({ ...SHARED_POSTGRES, max: 10 });
    pools.push(pool);
    const node = await startTestServer({ ...postgresStores(pool, { schema: db.schema }), undelivered });
    nodes.push(node);
    return node;
  };
  const timing = { afterMs: 200, pollIntervalMs: 50 } satisfies Partial<UndeliveredOptions>;

  beforeAll(async () => {
    db = await freshSchema();
  });
  afterEach(async () => {
    client?.close();
    client = undefined;
    for (const node of nodes) await node.close();
    nodes = [];
  });
  afterAll(async () => {
    for (const pool of pools) await pool.end();
    await db?.drop();
  });

  test("300 messages to offline users: exactly 300 calls, over both nodes", async () => {
    const calls: Array<{ node: string; call: UndeliveredCall }> = [];
    const [a, b] = [
      await startNode({ ...timing, handler: (call) => void calls.push({ node: "A", call }) }),
      await startNode({ ...timing, handler: (call) => void calls.push({ node: "B", call }) }),
    ];
    const sent = new Set<string>();
    await Promise.all(
      Array.from({ length: 300 }, async (_, index) => {
        const userId = `foreman-${index % 30}`;
        const message = await (index % 2 === 0 ? a : b).engine.toUser("acme-pg", userId).emit("expense:rejected", { index });
        sent.add(`${userId} ${message.id}`);
      }),
    );
    await waitFor(() => calls.length >= 300, { timeoutMs: 15_000, message: `300 calls (${calls.length} so far)` });
    await sleep(500);
    expect(calls).toHaveLength(300);
    expect(new Set(calls.map(({ call }) => `${call.userId} ${call.message.id}`))).toEqual(sent);
    expect(new Set(calls.map(({ node }) => node))).toEqual(new Set(["A", "B"]));
  }, 30_000);

  test("a device that takes the message cancels its call; the message it missed while away still gets one", async () => {
    const calls: UndeliveredCall[] = [];
    const node = await startNode({ afterMs: 600, pollIntervalMs: 50, handler: (call) => void calls.push(call) });
    const missed = await node.engine.toUser("acme-pg", "chloe").emit("expense:rejected", { expenseId: "e-1" });
    await waitFor(() => calls.length === 1, { message: "the call for the message no device took" });
    client = connect(node.url, { token: signToken({ userId: "chloe", companyId: "acme-pg" }), deviceId: "phone", socketOptions: { transports: ["websocket"] } });
    const inbox: InboxMessage[] = [];
    client.onInbox((message) => void inbox.push(message));
    await waitFor(() => client!.status === "connected");
    const taken = await node.engine.toUser("acme-pg", "chloe").emit("expense:approved", { expenseId: "e-2" });
    await waitFor(() => inbox.some((message) => message.id === taken.id));
    await sleep(900);
    expect(calls.map((call) => call.message.id)).toEqual([missed.id]);
  });

  test("a node that stops mid-call leaves the call to the other node, after the lease", async () => {
    let claimedAt = 0;
    const a = await startNode({
      ...timing,
      timeoutMs: 500,
      leaseMs: 1_500,
      handler: () => {
        claimedAt ||= Date.now();
        return new Promise(() => {});
      },
    });
    const message = await a.engine.toUser("acme-pg", "dave").emit("expense:rejected", { expenseId: "e-3" });
    await waitFor(() => claimedAt > 0, { message: "node A's call" });
    const taken: Array<{ call: UndeliveredCall; at: number }> = [];
    await startNode({ ...timing, timeoutMs: 500, leaseMs: 1_500, handler: (call) => void taken.push({ call, at: Date.now() }) });
    await a.close();
    await waitFor(() => taken.length === 1, { timeoutMs: 5_000, message: "node B to take the call over" });
    expect(taken[0]!.at - claimedAt).toBeGreaterThanOrEqual(1_400);
    expect(taken[0]!.call).toMatchObject({ userId: "dave", message, attempt: 2 });
  });
});
