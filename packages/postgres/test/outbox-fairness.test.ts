import { outboxStream, relay, type OutboxBatch, type OutboxRelay } from "@truss/core";
import type { TrussClient } from "@truss/client";
import { waitFor } from "@truss/test-utils";
import { afterAll, afterEach, beforeAll, expect, test } from "vitest";
import { postgresOutbox } from "../src/index.js";
import { freshSchema, type FreshSchema } from "./support/postgres.js";
import { device, startRelayNode, transaction, type RelayNode } from "./support/relay.js";

let db: FreshSchema;
let node: RelayNode | undefined;
const relays: OutboxRelay[] = [];
const clients: TrussClient[] = [];
const batches: OutboxBatch[] = [];

beforeAll(async () => {
  db = await freshSchema();
});
afterAll(async () => {
  await db?.drop();
});
afterEach(async () => {
  for (const batch of batches.splice(0)) await batch.settle({ done: [], failed: [] }).catch(() => undefined);
  for (const client of clients.splice(0)) client.close();
  for (const handle of relays.splice(0)) await handle.close();
  await node?.close();
  node = undefined;
  await db.pool.query(`DELETE FROM "${db.schema}".outbox`);
});

/** More rows than a claim reads of the oldest pending rows (1,000 at least). */
const BACKLOG = 2000;

/** Writes `count` rows to company `companyId`'s stream in one transaction, event `event`, data `{ i }`. */
async function writeRows(companyId: string, event: string, count: number): Promise<void> {
  const outbox = postgresOutbox(db.pool, { schema: db.schema });
  await transaction(db.pool, async (tx) => {
    const writer = outbox.with(tx).toCompany(companyId);
    for (let i = 0; i < count; i++) await writer.emit(event, { i });
  });
}

/** Claims a batch from a source of its own, kept for `afterEach` to give back. */
async function claim(limit: number, skip?: ReadonlySet<string>): Promise<OutboxBatch | null> {
  const batch = await postgresOutbox(db.pool, { schema: db.schema }).source({ listen: false }).claim(limit, skip);
  if (batch) batches.push(batch);
  return batch;
}

test("a backlog in one company's stream does not hold another company's row behind it, with two relays", { timeout: 60_000 }, async () => {
  node = await startRelayNode(db.pool, db.schema, { batchSize: 50, pollIntervalMs: 100 });
  relays.push(relay(node.server.engine, node.outbox.source(), { batchSize: 50, pollIntervalMs: 100 }));
  const big = await device(node.server.url, { companyId: "bigco", userId: "u-big", deviceId: "d-big" }, "item:imported");
  const small = await device(node.server.url, { companyId: "small", userId: "u-small", deviceId: "d-small" }, "expense:approved");
  clients.push(big.client, small.client);

  // A bulk import, then the other company's row, committed while the relays work on the import.
  await writeRows("bigco", "item:imported", BACKLOG);
  await writeRows("small", "expense:approved", 1);

  await waitFor(() => small.heard.length === 1, { message: "the other company's row", timeoutMs: 30_000 });
  const backlogHeard = big.heard.length;
  await waitFor(() => big.heard.length === BACKLOG, { message: "the whole backlog", timeoutMs: 30_000 });
  // Batches of 50: the row goes within a few batches of its commit, not once the backlog is below what a claim reads.
  expect(backlogHeard).toBeLessThan(BACKLOG / 4);
  expect(small.heard).toEqual([{ i: 0 }]);
  expect(big.heard).toEqual(Array.from({ length: BACKLOG }, (_, i) => ({ i })));
});

test("while one relay holds a stream with a backlog, a second relay claims another stream's newer row", async () => {
  await writeRows("bigco", "item:imported", BACKLOG);
  const first = await claim(100);
  expect(new Set(first!.rows.map((row) => row.target.companyId))).toEqual(new Set(["bigco"]));
  expect(first!.rows).toHaveLength(100);

  await writeRows("small", "expense:approved", 1);
  const second = await claim(100);
  expect(second?.rows.map((row) => ({ companyId: row.target.companyId, event: row.event }))).toEqual([{ companyId: "small", event: "expense:approved" }]);
});

test("with more streams pending than one claim looks at, a stream named after them is still taken within a few claims", { timeout: 60_000 }, async () => {
  await writeRows("bigco", "item:imported", BACKLOG);
  await writeRows("zzz", "expense:approved", 1);
  // 1,000 streams named before the others, each with one row newer than zzz's.
  const outbox = postgresOutbox(db.pool, { schema: db.schema });
  await transaction(db.pool, async (tx) => {
    for (let i = 0; i < 1000; i++) await outbox.with(tx).toCompany(`a-${String(i).padStart(4, "0")}`).emit("item:imported", { i });
  });

  // One relay's source, claiming two streams at a time and publishing nothing: where its scans start moves on.
  const source = outbox.source({ listen: false });
  const taken: string[] = [];
  for (let round = 0; round < 4 && !taken.includes("zzz"); round++) {
    const batch = await source.claim(2);
    taken.push(...batch!.rows.map((row) => row.target.companyId));
    await batch!.settle({ done: [], failed: [] });
  }
  expect(taken).toContain("zzz");
});

test("a claim leaves out the streams the relay holds back: with more of them than a batch takes, another stream's newer row is claimed", async () => {
  // As when a dozen companies' full inbox quotas hold their streams on the relay: their rows are the oldest.
  const held = Array.from({ length: 12 }, (_, i) => `full-${i}`);
  for (const companyId of held) await writeRows(companyId, "expense:approved", 1);
  await writeRows("room", "expense:approved", 1);
  const skip = new Set(held.map((companyId) => outboxStream({ kind: "company", companyId })));
  const batch = await claim(5, skip);
  expect(batch?.rows.map((row) => row.target.companyId)).toEqual(["room"]);
  // Without the list, the oldest streams fill the batch.
  await batch!.settle({ done: [], failed: [] });
  batches.splice(batches.indexOf(batch!), 1);
  const unskipped = await claim(5);
  expect(unskipped?.rows.map((row) => row.target.companyId)).toEqual(held.slice(0, 5));
});

test("a row committed late with a lower id does not open its stream to a second relay while the first still publishes it, nor hold up the second relay's other streams", async () => {
  const outbox = postgresOutbox(db.pool, { schema: db.schema });
  // T1 writes the stream's first row and stays open; T2 writes two more and commits.
  const late = await db.pool.connect();
  try {
    await late.query("BEGIN");
    await outbox.with(late).toCompany("acme").emit("project:updated", { n: 1 });
    await writeRows("acme", "project:updated", 2);
    // Relay A takes acme's committed rows and is still publishing them.
    const first = await claim(100);
    expect(first?.rows.map((row) => row.target.companyId)).toEqual(["acme", "acme"]);
    // T1 commits: its row is now acme's oldest pending row. Another company writes too.
    await late.query("COMMIT");
  } finally {
    late.release();
  }
  await writeRows("globex", "expense:approved", 1);
  // Relay B leaves acme to A (no second publisher of one stream, which would reorder it) and takes globex at once,
  // without waiting on A's locks.
  const startedAt = Date.now();
  const second = await claim(100);
  expect(Date.now() - startedAt).toBeLessThan(2_000);
  expect(second?.rows.map((row) => row.target.companyId)).toEqual(["globex"]);
});
