import { relay, type OutboxRelay } from "@truss/core";
import { sleep, startTcpProxy, startTestServer, type TcpProxy } from "@truss/test-utils";
import pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { postgresOutbox } from "../src/index.js";
import { freshSchema, SHARED_POSTGRES, type FreshSchema } from "./support/postgres.js";
import { device, outboxRows, startRelayNode, transaction } from "./support/relay.js";

let db: FreshSchema;
let proxy: TcpProxy;
let relayPool: pg.Pool;

beforeAll(async () => {
  db = await freshSchema();
  proxy = await startTcpProxy(SHARED_POSTGRES.port);
  relayPool = new pg.Pool({ ...SHARED_POSTGRES, port: proxy.port, max: 4 });
  relayPool.on("error", () => undefined);
});
afterAll(async () => {
  await proxy.close();
  await relayPool.end().catch(() => undefined);
  await db.drop();
});

test("engine.close() returns while the database does not answer the relay (connections held unanswered)", { timeout: 30_000 }, async () => {
  const node = await startRelayNode(relayPool, db.schema, { pollIntervalMs: 50 });
  await new Promise((resolve) => setTimeout(resolve, 200));
  // Every connection the relay has is cut, and every new one is accepted and never answered.
  proxy.hold();
  proxy.cut();
  await new Promise((resolve) => setTimeout(resolve, 300));
  const started = Date.now();
  await node.close();
  expect(Date.now() - started).toBeLessThan(15_000);
  proxy.release();
});

test("a claim still waiting for a pooled connection when the engine closes publishes nothing once it gets one: its rows stay pending", { timeout: 30_000 }, async () => {
  // The application's pool, shared with the relay, with its one connection held by the application.
  const pool = new pg.Pool({ ...SHARED_POSTGRES, max: 1 });
  try {
    const node = await startRelayNode(pool, db.schema, { pollIntervalMs: 50, source: { listen: false } });
    const phone = await device(node.server.url, { companyId: "acme", userId: "alice", deviceId: "alice-phone" }, "expense:approved");
    await sleep(200);
    const held = await pool.connect();
    await transaction(db.pool, (tx) => node.outbox.with(tx).toUser("acme", "alice").emit("expense:approved", { expenseId: "e-1" }));
    // The relay's claim now waits for the held connection.
    await sleep(200);
    expect(pool.waitingCount).toBe(1);

    const closed = node.close();
    await sleep(100);
    held.release();
    await closed;
    await sleep(500);
    phone.client.close();
    expect(phone.heard).toEqual([]);
    expect(node.relay.stats).toMatchObject({ published: 0, batches: 0 });
    expect(await outboxRows(db.pool, db.schema)).toEqual([expect.objectContaining({ event: "expense:approved", failed_code: null })]);
    // Given back, not held: another relay can claim it at once.
    const batch = await node.outbox.source({ listen: false }).claim(10);
    expect(batch?.rows.map((row) => row.data)).toEqual([{ expenseId: "e-1" }]);
    await batch!.settle({ done: [], failed: [] });
  } finally {
    await pool.end();
  }
});

test("relay() on a closed engine is refused, and the source it was given lets its LISTEN connection go", async () => {
  const applicationName = `truss-relay-refused-${process.pid}`;
  const pool = new pg.Pool({ ...SHARED_POSTGRES, max: 2, application_name: applicationName });
  const backends = async () => Number((await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1", [applicationName])).rows[0]!.n);
  let accepted: OutboxRelay | undefined;
  try {
    const server = await startTestServer();
    await server.close();
    expect(() => (accepted = relay(server.engine, postgresOutbox(pool, { schema: db.schema }).source(), { pollIntervalMs: 50 }))).toThrow(/engine\.close\(\) was called/);
    // The listening connection, made or still being made when the relay was refused, is closed.
    await sleep(300);
    expect(await backends()).toBe(0);
  } finally {
    await accepted?.close();
    await pool.end();
  }
});
