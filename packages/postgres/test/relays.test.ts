import { randomUUID } from "node:crypto";
import { relay, type OutboxRelay } from "@truss/core";
import { compareInboxIds } from "@truss/protocol";
import { redisAdapter, redisStores } from "@truss/redis";
import { connectAs, startRedisServer, startTestServer, waitFor, withTimeout, type RedisServer, type TestServer } from "@truss/test-utils";
import { Redis } from "ioredis";
import pg from "pg";
import type { Socket as ClientSocket } from "socket.io-client";
import { afterAll, beforeAll, expect, test } from "vitest";
import { postgresOutbox } from "../src/index.js";
import { freshSchema, SHARED_POSTGRES, type FreshSchema } from "./support/postgres.js";

const STREAMS = 50;
const ROWS_PER_STREAM = 200;

let db: FreshSchema;
let redis: RedisServer;
const nodes: Array<{ server: TestServer; relay: OutboxRelay; pool: pg.Pool; clients: Redis[] }> = [];
const sockets: ClientSocket[] = [];

beforeAll(async () => {
  db = await freshSchema();
  redis = await startRedisServer();
});
afterAll(async () => {
  for (const socket of sockets) socket.close();
  for (const node of nodes) {
    await withTimeout(node.server.close(), 10_000);
    await node.pool.end();
    for (const client of node.clients) client.disconnect();
  }
  await redis?.stop();
  await db?.drop();
});

/** An engine node on the shared Redis (stores and adapter) relaying the schema's outbox on a pool of its own. */
async function startNode(prefix: string): Promise<(typeof nodes)[number]> {
  const store = new Redis(redis.url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 2000 });
  const pub = new Redis(redis.url, { lazyConnect: true });
  const sub = pub.duplicate();
  await Promise.all([store.connect(), pub.connect(), sub.connect()]);
  const server = await startTestServer({ ...redisStores(store, { prefix }), adapter: redisAdapter(pub, sub, { key: prefix }) });
  const pool = new pg.Pool({ ...SHARED_POSTGRES, max: 4 });
  // Small batches, so the two relays take turns on streams many times over.
  const handle = relay(server.engine, postgresOutbox(pool, { schema: db.schema }).source(), { batchSize: 25, pollIntervalMs: 200 });
  const node = { server, relay: handle, pool, clients: [store, pub, sub] };
  nodes.push(node);
  return node;
}

test(`two relays on two nodes drain ${STREAMS * ROWS_PER_STREAM} rows across ${STREAMS} streams: each row once, each stream in commit order`, { timeout: 120_000 }, async () => {
  const prefix = `truss-outbox-${randomUUID()}`;
  const [a, b] = [await startNode(prefix), await startNode(prefix)];
  await waitFor(async () => (await a.server.engine.io!.of("/").adapter.serverCount()) >= 2 && (await b.server.engine.io!.of("/").adapter.serverCount()) >= 2, {
    message: "both adapters to see two nodes",
  });

  // Half the streams are companies' broadcast streams, half users' inboxes; every device is on node A,
  // so what node B's relay publishes reaches it through the adapter.
  const companyOf = (stream: number) => `c-${stream}`;
  const heard = new Map<number, Array<{ seq: number; offset?: number; inboxId?: string }>>();
  for (let stream = 0; stream < STREAMS; stream++) {
    const socket = await connectAs(a.server.url, { companyId: companyOf(stream), userId: "u", deviceId: `d-${stream}` });
    sockets.push(socket);
    const log: Array<{ seq: number; offset?: number; inboxId?: string }> = [];
    heard.set(stream, log);
    socket.on("row", (data: { seq: number }, position?: { offset: number }) => log.push({ seq: data.seq, offset: position?.offset }));
    socket.on("inbox:message", (message: { id: string; event: string; data: { seq: number } }) => {
      if (message.event === "row") log.push({ seq: message.data.seq, inboxId: message.id });
    });
  }

  // One writer a stream commits its rows one transaction after another (1 to 3 rows each), all writers at once.
  const writers = new pg.Pool({ ...SHARED_POSTGRES, max: STREAMS });
  const outbox = postgresOutbox(writers, { schema: db.schema });
  const started = performance.now();
  try {
    await Promise.all(
      Array.from({ length: STREAMS }, async (_, stream) => {
        const company = companyOf(stream);
        for (let seq = 0; seq < ROWS_PER_STREAM; ) {
          const client = await writers.connect();
          try {
            await client.query("BEGIN");
            const take = Math.min(1 + (seq % 3), ROWS_PER_STREAM - seq);
            for (let i = 0; i < take; i++, seq++) {
              const emitter = stream % 2 === 0 ? outbox.with(client).toCompany(company) : outbox.with(client).toUser(company, "u");
              await emitter.emit("row", { seq });
            }
            await client.query("COMMIT");
          } finally {
            client.release();
          }
        }
      }),
    );
  } finally {
    await writers.end();
  }

  const total = () => [...heard.values()].reduce((sum, log) => sum + log.length, 0);
  await waitFor(() => total() >= STREAMS * ROWS_PER_STREAM, { timeoutMs: 90_000, intervalMs: 50, message: "every row on a device" });
  const drainedMs = performance.now() - started;
  await new Promise((resolve) => setTimeout(resolve, 500));

  for (const [stream, log] of heard) {
    // Each row once, stored in commit order: ordered by what orders a stream for a device (its offset,
    // or its inbox id), the rows run in the order they were committed. Arrival order on a raw socket is
    // not the promise: a row stored through the other node reaches this one through the adapter, and can
    // arrive after a later row stored here (a client orders a stream by offset, an inbox by id).
    const stored = [...log].sort((x, y) => (x.offset !== undefined ? x.offset - y.offset! : compareInboxIds(x.inboxId!, y.inboxId!)));
    expect(stored.map((entry) => entry.seq), `stream ${stream}`).toEqual(Array.from({ length: ROWS_PER_STREAM }, (_, seq) => seq));
    if (stream % 2 === 0) {
      // One stream append each: offsets 1..n without a gap or a repeat.
      expect(stored.map((entry) => entry.offset), `stream ${stream} offsets`).toEqual(Array.from({ length: ROWS_PER_STREAM }, (_, i) => i + 1));
    } else {
      expect(new Set(log.map((entry) => entry.inboxId)).size, `stream ${stream} inbox ids`).toBe(ROWS_PER_STREAM);
    }
  }
  const { rows } = await db.pool.query(`SELECT count(*)::int AS left FROM "${db.schema}".outbox`);
  expect(rows[0].left).toBe(0);
  // Both relays did part of the work.
  expect(a.relay.stats.published).toBeGreaterThan(0);
  expect(b.relay.stats.published).toBeGreaterThan(0);
  expect(a.relay.stats.published + b.relay.stats.published).toBe(STREAMS * ROWS_PER_STREAM);
  console.log(
    `drained ${STREAMS * ROWS_PER_STREAM} rows in ${Math.round(drainedMs)} ms (writers included); relay A ${a.relay.stats.published}, relay B ${b.relay.stats.published}`,
  );
});
