import { randomUUID } from "node:crypto";
import { connect, type TrussClient } from "@truss/client";
import { redisAdapter, redisStores } from "@truss/redis";
import { connectAs, signToken, startRedisServer, startTestServer, waitFor, withTimeout, type RedisServer, type TestServer } from "@truss/test-utils";
import { Redis } from "ioredis";
import type { Socket as ClientSocket } from "socket.io-client";
import { afterAll, beforeAll, expect, test } from "vitest";
import { postgresOutbox } from "../src/index.js";
import { freshSchema, SHARED_POSTGRES, type FreshSchema } from "./support/postgres.js";
import { removeRelayProcessBundle, startRelayProcess, type RelayProcess } from "./support/relay-process.js";
import { outboxRows } from "./support/relay.js";

const ROWS = 300;
const BATCH = 50;

let db: FreshSchema;
let redis: RedisServer;
let devicesNode: TestServer | undefined;
const redisClients: Redis[] = [];
const processes: RelayProcess[] = [];
const sockets: ClientSocket[] = [];
const clients: TrussClient[] = [];

beforeAll(async () => {
  db = await freshSchema();
  redis = await startRedisServer();
});
afterAll(async () => {
  for (const child of processes) await child.kill();
  for (const socket of sockets) socket.close();
  for (const client of clients) client.close();
  if (devicesNode) await withTimeout(devicesNode.close(), 10_000);
  for (const client of redisClients) client.disconnect();
  await removeRelayProcessBundle();
  await redis?.stop();
  await db?.drop();
});

test(
  "the relay process killed with SIGKILL between publishing a batch and removing it: after a restart every row reaches devices exactly once",
  { timeout: 90_000 },
  async () => {
    const prefix = `truss-crash-${randomUUID()}`;
    // The devices' node: same Redis stores and adapter as the relay's, no relay of its own.
    const store = new Redis(redis.url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 2000 });
    const pub = new Redis(redis.url, { lazyConnect: true });
    const sub = pub.duplicate();
    redisClients.push(store, pub, sub);
    await Promise.all([store.connect(), pub.connect(), sub.connect()]);
    devicesNode = await startTestServer({ ...redisStores(store, { prefix }), adapter: redisAdapter(pub, sub, { key: prefix }) });

    // On the wire: every company broadcast with its position, every inbox message with its id.
    const wire = await connectAs(devicesNode.url, { companyId: "acme", userId: "alice", deviceId: "alice-wire" });
    sockets.push(wire);
    const broadcasts: Array<{ seq: number; offset: number }> = [];
    const inboxIds = new Map<number, Set<string>>();
    wire.on("row", (data: { seq: number }, position: { offset: number }) => broadcasts.push({ seq: data.seq, offset: position.offset }));
    wire.on("inbox:message", (message: { id: string; data: { seq: number } }) => {
      const ids = inboxIds.get(message.data.seq) ?? new Set();
      inboxIds.set(message.data.seq, ids.add(message.id));
    });
    // In the app: what @truss/client hands over.
    const phone = connect(devicesNode.url, { token: signToken({ companyId: "acme", userId: "alice" }), deviceId: "alice-phone", socketOptions: { transports: ["websocket"] } });
    clients.push(phone);
    const handed: number[] = [];
    phone.on("row", (data) => void handed.push((data as { seq: number }).seq));
    await waitFor(() => phone.status === "connected", { message: "the device" });

    // The backlog: company broadcasts (even seq) and alice's inbox (odd seq), ten rows a transaction.
    const outbox = postgresOutbox(db.pool, { schema: db.schema });
    for (let seq = 0; seq < ROWS; ) {
      const client = await db.pool.connect();
      try {
        await client.query("BEGIN");
        for (let i = 0; i < 10; i++, seq++) {
          const to = seq % 2 === 0 ? outbox.with(client).toCompany("acme") : outbox.with(client).toUser("acme", "alice");
          await to.emit("row", { seq });
        }
        await client.query("COMMIT");
      } finally {
        client.release();
      }
    }

    const config = { redisUrl: redis.url, prefix, schema: db.schema, postgres: SHARED_POSTGRES, batchSize: BATCH };
    const first = await startRelayProcess({ ...config, holdSettleMs: 30_000 });
    processes.push(first);
    await waitFor(() => first.lines.includes(`settling ${BATCH}`), { timeoutMs: 20_000, message: "the first batch to be published" });
    await waitFor(() => handed.length === BATCH, { message: "the first batch on the device" });
    await first.kill();
    // Published and never removed: the killed relay's transaction is rolled back, every row is still there.
    await waitFor(async () => (await outboxRows(db.pool, db.schema)).length === ROWS, { message: "the rows to be back" });

    const second = await startRelayProcess({ ...config, holdSettleMs: 0 });
    processes.push(second);
    await waitFor(async () => (await outboxRows(db.pool, db.schema)).length === 0, { timeoutMs: 30_000, message: "the restarted relay to drain the outbox" });
    await waitFor(() => handed.length >= ROWS, { message: "every row on the device" });
    await new Promise((resolve) => setTimeout(resolve, 500));

    // The app got each row once, each stream in order (the two streams interleave as they will).
    const range = (parity: number) => Array.from({ length: ROWS }, (_, seq) => seq).filter((seq) => seq % 2 === parity);
    expect(handed.filter((seq) => seq % 2 === 0)).toEqual(range(0));
    expect(handed.filter((seq) => seq % 2 === 1)).toEqual(range(1));
    // Stored once each: one stream offset per broadcast (repeats on the wire carry the first one), one inbox id per message.
    const offsets = new Map<number, Set<number>>();
    for (const { seq, offset } of broadcasts) offsets.set(seq, (offsets.get(seq) ?? new Set()).add(offset));
    expect(offsets.size).toBe(ROWS / 2);
    expect([...offsets.values()].every((set) => set.size === 1)).toBe(true);
    expect(Math.max(...broadcasts.map((entry) => entry.offset))).toBe(ROWS / 2);
    expect(inboxIds.size).toBe(ROWS / 2);
    expect([...inboxIds.values()].every((set) => set.size === 1)).toBe(true);
    // The restart did publish the killed batch's broadcasts again: the idempotency keys made the repeats harmless.
    expect(broadcasts.length).toBeGreaterThan(ROWS / 2);
  },
);
