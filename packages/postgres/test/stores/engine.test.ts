import { randomUUID } from "node:crypto";
import { connect, type StreamResync, type TrussClient } from "@truss/client";
import type { InboxMessage } from "@truss/protocol";
import { signToken, startTcpProxy, startTestServer, waitFor, type TcpProxy, type TestServer } from "@truss/test-utils";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { postgresStores } from "../../src/stores/index.js";
import { freshSchema, SHARED_POSTGRES, type FreshSchema } from "../support/postgres.js";

/**
 * Two engine nodes, each with its own pool, on one schema: what one node
 * stores the other reads. A @truss/client device that was away catches up
 * from the PostgreSQL stream and inbox, including what the other node sent,
 * once and in order; a document written on one node is the other's.
 */
describe("two engine nodes on postgresStores", () => {
  let db: FreshSchema;
  const pools: pg.Pool[] = [];
  const nodes: TestServer[] = [];
  let proxy: TcpProxy;
  let client: TrussClient | undefined;

  const startNode = async () => {
    const pool = new pg.Pool({ ...SHARED_POSTGRES, max: 10 });
    pools.push(pool);
    const node = await startTestServer({ ...postgresStores(pool, { schema: db.schema }) });
    nodes.push(node);
    return node;
  };

  beforeAll(async () => {
    db = await freshSchema();
  });
  afterAll(async () => {
    client?.close();
    for (const node of nodes) await node.close();
    await proxy?.close();
    for (const pool of pools) await pool.end();
    await db?.drop();
  });

  test("a device that was away gets every broadcast of both nodes and every inbox message once, in order, and a document is shared", async () => {
    const nodeA = await startNode();
    const nodeB = await startNode();
    proxy = await startTcpProxy(nodeA.port);
    const companyId = `company-${randomUUID()}`;
    const userId = "ann";
    client = connect(proxy.url, {
      token: signToken({ userId, companyId }),
      deviceId: "phone",
      reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
      socketOptions: { transports: ["websocket"] },
    });
    const heard: number[] = [];
    const inbox: InboxMessage[] = [];
    const resynced: StreamResync[] = [];
    client.on("stock:updated", (data) => void heard.push((data as { n: number }).n));
    client.onInbox((message) => void inbox.push(message));
    client.onResync((resync) => void resynced.push(resync));
    await waitFor(() => client!.status === "connected", { message: "the device to connect" });

    // A broadcast committed while the socket's stream:start is being read can be counted in its
    // start and so dropped by a fresh device; warm up until one is heard, then count from there.
    for (let warmUp = 1; heard.length === 0; warmUp += 1) {
      expect(warmUp, "a warm-up broadcast is heard live").toBeLessThan(50);
      await nodeA.engine.toCompany(companyId).emit("stock:updated", { n: -warmUp });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    heard.length = 0;
    await nodeA.engine.toCompany(companyId).emit("stock:updated", { n: 0 });
    await waitFor(() => heard.length === 1, { message: "the first broadcast, live" });

    proxy.hold();
    proxy.cut();
    await waitFor(() => client!.status === "reconnecting", { message: "the device to notice the cut" });
    for (let n = 1; n <= 20; n += 1) await (n % 2 ? nodeA : nodeB).engine.toCompany(companyId).emit("stock:updated", { n });
    for (let n = 1; n <= 3; n += 1) await nodeB.engine.toUser(companyId, userId).emit("expense:approved", { n });
    proxy.release();

    await waitFor(() => heard.length === 21 && inbox.length === 3 && !client!.recovering, { timeoutMs: 10_000, message: "the catch-up" });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(heard).toEqual(Array.from({ length: 21 }, (_, n) => n));
    expect(inbox.map((message) => message.data)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect(resynced).toEqual([]);

    const created = await nodeA.engine.documents.update(companyId, "project", "riverside", { baseVersion: 0, changes: { name: "Riverside" } }, "ann");
    expect(created).toMatchObject({ status: "applied", document: { version: 1 } });
    expect((await nodeB.engine.documents.get(companyId, "project", "riverside")).data).toEqual({ name: "Riverside" });
    await nodeB.engine.documents.update(companyId, "project", "riverside", { baseVersion: 1, changes: { budget: 1_250_000 } }, "bob");
    const history = await nodeA.engine.documents.history(companyId, "project", "riverside");
    expect(history.map((version) => [version.version, version.updatedBy, version.data])).toEqual([
      [2, "bob", { name: "Riverside", budget: 1_250_000 }],
      [1, "ann", { name: "Riverside" }],
    ]);
  }, 30_000);
});
