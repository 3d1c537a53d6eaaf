import { connect, type TrussClient } from "@truss/client";
import { connectAs, signToken, waitFor } from "@truss/test-utils";
import type { Socket as ClientSocket } from "socket.io-client";
import { afterAll, beforeAll, expect, test } from "vitest";
import { freshSchema, startPrivatePostgres, type FreshSchema, type PrivatePostgres } from "./support/postgres.js";
import { outboxRows, startRelayNode, type RelayNode } from "./support/relay.js";

let postgres: PrivatePostgres;
let db: FreshSchema;
let node: RelayNode | undefined;
const sockets: ClientSocket[] = [];
const clients: TrussClient[] = [];

beforeAll(async () => {
  postgres = await startPrivatePostgres();
  db = await freshSchema(postgres.connection, { connectionTimeoutMillis: 1000 });
}, 60_000);
afterAll(async () => {
  for (const socket of sockets) socket.close();
  for (const client of clients) client.close();
  await node?.close();
  await db?.drop().catch(() => undefined);
  await postgres?.destroy();
}, 60_000);

test("PostgreSQL restarted under load: no committed row lost, none published twice, and the relay resumes by itself", { timeout: 90_000 }, async () => {
  node = await startRelayNode(db.pool, db.schema, { pollIntervalMs: 200 });
  const wire = await connectAs(node.server.url, { companyId: "acme", userId: "alice", deviceId: "alice-wire" });
  sockets.push(wire);
  const offsets = new Map<number, Set<number>>();
  wire.on("row", (data: { seq: number }, position: { offset: number }) => offsets.set(data.seq, (offsets.get(data.seq) ?? new Set()).add(position.offset)));
  const phone = connect(node.server.url, { token: signToken({ companyId: "acme", userId: "alice" }), deviceId: "alice-phone", socketOptions: { transports: ["websocket"] } });
  clients.push(phone);
  const handed: number[] = [];
  phone.on("row", (data) => void handed.push((data as { seq: number }).seq));
  await waitFor(() => phone.status === "connected", { message: "the device" });

  // Writers commit one row a transaction (even seq to the company, odd to alice's inbox) until told to stop.
  const committed = new Set<number>();
  const unsure = new Set<number>();
  let writing = true;
  let next = 0;
  const writer = async () => {
    while (writing) {
      const seq = next++;
      let client;
      try {
        client = await db.pool.connect();
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      // A connection PostgreSQL ends between two queries reports it on the client.
      const ignore = () => undefined;
      client.on("error", ignore);
      let commitSent = false;
      try {
        await client.query("BEGIN");
        const to = seq % 2 === 0 ? node!.outbox.with(client).toCompany("acme") : node!.outbox.with(client).toUser("acme", "alice");
        await to.emit("row", { seq });
        commitSent = true;
        await client.query("COMMIT");
        committed.add(seq);
        client.off("error", ignore);
        client.release();
      } catch (error) {
        // A COMMIT whose answer was lost may or may not have committed.
        if (commitSent) unsure.add(seq);
        client.off("error", ignore);
        client.release(error as Error);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  const writers = Array.from({ length: 4 }, writer);

  await waitFor(() => handed.length >= 50, { message: "rows flowing before the restart" });
  await postgres.stop();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  await postgres.start();
  const restarted = Date.now();
  // Rows committed after the restart reach the device: the relay resumed without help.
  const before = committed.size;
  await waitFor(() => committed.size >= before + 50, { timeoutMs: 15_000, message: "writes after the restart" });
  writing = false;
  await Promise.all(writers);

  await waitFor(async () => (await outboxRows(db.pool, db.schema)).length === 0, { timeoutMs: 20_000, message: "the outbox to drain" });
  await waitFor(() => [...committed].every((seq) => handed.includes(seq)), { timeoutMs: 10_000, message: "every committed row on the device" });
  const resumedMs = Date.now() - restarted;
  await new Promise((resolve) => setTimeout(resolve, 500));

  // Each committed row once; a row whose COMMIT answer was lost at most once; nothing else.
  const counts = new Map<number, number>();
  for (const seq of handed) counts.set(seq, (counts.get(seq) ?? 0) + 1);
  expect([...counts.values()].every((count) => count === 1)).toBe(true);
  for (const seq of committed) expect(counts.get(seq), `row ${seq}`).toBe(1);
  for (const seq of counts.keys()) expect(committed.has(seq) || unsure.has(seq), `row ${seq} was never committed`).toBe(true);
  // Stored once: one stream offset per broadcast.
  expect([...offsets.values()].every((set) => set.size === 1)).toBe(true);
  expect(resumedMs).toBeLessThan(20_000);
});
