import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import type { UndeliveredCall } from "@truss/core";
import { sleep, waitFor } from "@truss/test-utils";
import type { TrussClient } from "@truss/client";
import { freshSchema, type FreshSchema } from "./support/postgres.js";
import { device, outboxRows, startRelayNode, transaction, type RelayNode } from "./support/relay.js";

let db: FreshSchema;
let node: RelayNode | undefined;
const clients: TrussClient[] = [];
const calls: Array<{ event: string; data: unknown; at: number }> = [];

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
  calls.length = 0;
  await db.pool.query(`DELETE FROM "${db.schema}".outbox`);
});

const alice = { companyId: "acme", userId: "alice", deviceId: "alice-phone" };
/** A long engine delay: far longer than any test here waits. */
const LONG_AFTER_MS = 10_000;

/** A node whose engine calls the undelivered handler `afterMs` after a message no device took, unless the send says otherwise. */
function startNode(afterMs: number) {
  const handler = ({ message }: UndeliveredCall) => void calls.push({ event: message.event, data: message.data, at: Date.now() });
  return startRelayNode(db.pool, db.schema, { pollIntervalMs: 50, engine: { undelivered: { afterMs, pollIntervalMs: 20, handler } } });
}

describe("an outbox toUser row's undelivered choice", () => {
  test("undelivered: false is published to the user's inbox and never calls the handler, while the row behind it, at the engine's 200 ms, does", async () => {
    node = await startNode(200);
    await transaction(db.pool, async (tx) => {
      const toAlice = node!.outbox.with(tx).toUser("acme", "alice");
      await toAlice.emit("expense:approved", { expenseId: "e-1" }, { undelivered: false });
      await toAlice.emit("notification:new", { title: "Expense approved" });
    });

    await waitFor(() => calls.length === 1, { message: "the call of the second row", timeoutMs: 3000 });
    await sleep(500);
    expect(calls.map((call) => call.event)).toEqual(["notification:new"]);
    expect(node.relay.stats).toMatchObject({ published: 2, failed: 0 });
    expect(await outboxRows(db.pool, db.schema)).toEqual([]);
    // Published all the same: the phone, connecting later, is handed it from the inbox.
    const phone = await device(node.server.url, alice, "expense:approved");
    clients.push(phone.client);
    await waitFor(() => phone.heard.length === 1, { message: "the approval from the inbox" });
    expect(phone.heard).toEqual([{ expenseId: "e-1" }]);
  });

  test("{ afterMs: 300 } calls the handler about 300 ms after the message was stored, not at the engine's delay", async () => {
    node = await startNode(LONG_AFTER_MS);
    const committed = await transaction(db.pool, async (tx) => {
      await node!.outbox.with(tx).toUser("acme", "alice").emit("expense:rejected", { expenseId: "e-2" }, { undelivered: { afterMs: 300 } });
      return Date.now();
    });

    await waitFor(() => calls.length === 1, { message: "the call", timeoutMs: 3000 });
    const delay = calls[0]!.at - committed;
    expect(delay).toBeGreaterThanOrEqual(300);
    expect(delay).toBeLessThan(2000);
    expect(calls[0]).toMatchObject({ event: "expense:rejected", data: { expenseId: "e-2" } });
  });

  test("a bad value, or one on a company or topic row, is refused at the call and writes nothing", async () => {
    node = await startNode(LONG_AFTER_MS);
    await transaction(db.pool, async (tx) => {
      const writer = node!.outbox.with(tx);
      for (const bad of [{ afterMs: 0 }, { afterMs: 2.5 }, { afterMs: "300" }, {}, true, "later", null]) {
        await expect(writer.toUser("acme", "alice").emit("expense:approved", {}, { undelivered: bad as never })).rejects.toThrow(
          new TypeError(`outbox toUser(...).emit: options.undelivered must be false or { afterMs } with a positive integer of ms; got ${JSON.stringify(bad)}.`),
        );
      }
      await expect(writer.toCompany("acme").emit("project:updated", {}, { undelivered: false } as never)).rejects.toThrow(/undelivered is for toUser messages only/);
      await expect(writer.toTopic("acme", "project:p-1").emit("project:updated", {}, { undelivered: { afterMs: 300 } } as never)).rejects.toThrow(TypeError);
    });
    expect(await outboxRows(db.pool, db.schema)).toEqual([]);
    // The table refuses a shape the call would not write, from a writer that goes around it.
    await expect(
      db.pool.query(`INSERT INTO "${db.schema}".outbox (stream, kind, company_id, event, undelivered) VALUES ('company:"acme"', 'company', 'acme', 'x', 'false')`),
    ).rejects.toThrow(/outbox_undelivered_shape/);
  });

  test("an engine without the undelivered option publishes a false row, and marks an { afterMs } row failed with its reason", async () => {
    node = await startRelayNode(db.pool, db.schema, { pollIntervalMs: 50, engine: { logger: { warn: () => undefined, error: () => undefined } } });
    await transaction(db.pool, async (tx) => {
      const toAlice = node!.outbox.with(tx).toUser("acme", "alice");
      await toAlice.emit("expense:approved", { expenseId: "e-3" }, { undelivered: false });
      await toAlice.emit("expense:rejected", { expenseId: "e-4" }, { undelivered: { afterMs: 300 } });
    });
    await waitFor(() => node!.relay.stats.published + node!.relay.stats.failed === 2, { message: "both rows to settle" });
    expect(node.relay.stats).toMatchObject({ published: 1, failed: 1 });
    expect(await outboxRows(db.pool, db.schema)).toEqual([
      expect.objectContaining({ event: "expense:rejected", failed_code: "INVALID_PAYLOAD", failed_message: expect.stringContaining("needs the engine's `undelivered` option") }),
    ]);
  });
});
