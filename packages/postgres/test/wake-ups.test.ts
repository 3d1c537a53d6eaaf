import { startTcpProxy, waitFor, type TcpProxy } from "@truss/test-utils";
import type { TrussClient } from "@truss/client";
import pg from "pg";
import { afterAll, afterEach, beforeAll, expect, test } from "vitest";
import { freshSchema, SHARED_POSTGRES, type FreshSchema } from "./support/postgres.js";
import { device, startRelayNode, transaction, type RelayNode } from "./support/relay.js";

let db: FreshSchema;
let node: RelayNode | undefined;
let proxy: TcpProxy | undefined;
let relayPool: pg.Pool | undefined;
const clients: TrussClient[] = [];
const alice = { companyId: "acme", userId: "alice", deviceId: "alice-phone" };

beforeAll(async () => {
  db = await freshSchema();
});
afterAll(async () => {
  await db?.drop();
});
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await node?.close();
  node = undefined;
  await relayPool?.end();
  relayPool = undefined;
  await proxy?.close();
  proxy = undefined;
});

async function phoneOn(url: string) {
  const phone = await device(url, alice, "expense:approved");
  clients.push(phone.client);
  return phone;
}

test("a row whose NOTIFY never came is published by the poll, within its interval", async () => {
  node = await startRelayNode(db.pool, db.schema, { pollIntervalMs: 400 });
  const phone = await phoneOn(node.server.url);
  // Let the relay go idle on its wait, listening.
  await new Promise((resolve) => setTimeout(resolve, 200));
  // A row written as the outbox writes it, but with its notification lost.
  const written = Date.now();
  await db.pool.query(
    `INSERT INTO "${db.schema}".outbox (stream, kind, company_id, user_id, event, data) VALUES ($1, 'user', 'acme', 'alice', 'expense:approved', $2::json)`,
    ['user:"acme":"alice"', JSON.stringify({ expenseId: "e-lost-notify" })],
  );
  await waitFor(() => phone.heard.length === 1, { timeoutMs: 3000, message: "the poll to publish the row" });
  expect(Date.now() - written).toBeLessThan(400 + 300);
  expect(phone.heard).toEqual([{ expenseId: "e-lost-notify" }]);
});

test("with the poll far away, a NOTIFY wakes the relay at once", async () => {
  node = await startRelayNode(db.pool, db.schema, { pollIntervalMs: 60_000 });
  const phone = await phoneOn(node.server.url);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const committed = Date.now();
  await transaction(db.pool, (tx) => node!.outbox.with(tx).toUser("acme", "alice").emit("expense:approved", { expenseId: "e-notified" }));
  await waitFor(() => phone.heard.length === 1, { timeoutMs: 3000, message: "the NOTIFY to wake the relay" });
  expect(Date.now() - committed).toBeLessThan(1000);
});

test("the listening connection cut through a TCP proxy: the relay listens again on its own and NOTIFY wakes it", async () => {
  proxy = await startTcpProxy(SHARED_POSTGRES.port);
  // Named, to find this relay's listening connection among every test's on the shared server.
  const applicationName = `truss-wake-ups-${db.schema}`;
  relayPool = new pg.Pool({ ...SHARED_POSTGRES, port: proxy.port, max: 4, application_name: applicationName });
  relayPool.on("error", () => undefined);
  // The relay's source on the proxied pool; the writers on the direct one. The poll is out of the picture.
  node = await startRelayNode(relayPool, db.schema, { pollIntervalMs: 60_000 });
  const phone = await phoneOn(node.server.url);
  await transaction(db.pool, (tx) => node!.outbox.with(tx).toUser("acme", "alice").emit("expense:approved", { expenseId: "e-before-cut" }));
  await waitFor(() => phone.heard.length === 1, { message: "the first row" });

  const listeners = async () =>
    (await db.pool.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE query = 'LISTEN truss_outbox' AND application_name = $1", [applicationName])).rows.map(
      (row) => row.pid,
    );
  const before = await listeners();
  expect(before).toHaveLength(1);
  proxy.cut();
  // A new listening connection, not the one cut.
  await waitFor(async () => (await listeners()).some((pid) => !before.includes(pid)), { timeoutMs: 5000, message: "the relay to listen again" });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const committed = Date.now();
  await transaction(db.pool, (tx) => node!.outbox.with(tx).toUser("acme", "alice").emit("expense:approved", { expenseId: "e-after-cut" }));
  await waitFor(() => phone.heard.length === 2, { timeoutMs: 5000, message: "the row after the cut" });
  expect(Date.now() - committed).toBeLessThan(2000);
  expect(phone.heard).toEqual([{ expenseId: "e-before-cut" }, { expenseId: "e-after-cut" }]);
});

test("an idle pooled connection that PostgreSQL ends does not end the process when the pool is the relay's alone", async () => {
  // The application's pool with no 'error' listener of its own, as pg leaves it: the relay's source is all that uses it.
  relayPool = new pg.Pool({ ...SHARED_POSTGRES, max: 4 });
  node = await startRelayNode(relayPool, db.schema, { pollIntervalMs: 50 });
  const phone = await phoneOn(node.server.url);
  // A connection left idle in the pool, then ended by the server (what a PostgreSQL restart does to every connection).
  const idle = await relayPool.connect();
  const { rows } = await idle.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
  idle.release();
  await db.pool.query("SELECT pg_terminate_backend($1)", [rows[0]!.pid]);
  // The relay still publishes what is committed afterwards.
  await transaction(db.pool, (client) => node!.outbox.with(client).toUser("acme", "alice").emit("expense:approved", { id: "after" }));
  await waitFor(() => phone.heard.some((data) => (data as { id?: string }).id === "after"), { message: "the row committed after the connection ended" });
  expect(relayPool.listenerCount("error")).toBe(1);
});
