import { startTcpProxy, type TcpProxy } from "@truss/test-utils";
import pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { freshSchema, SHARED_POSTGRES, type FreshSchema } from "./support/postgres.js";
import { startRelayNode } from "./support/relay.js";

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
