import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import type { UndeliveredCall } from "@truss/core";
import { ERROR_CODES } from "@truss/protocol";
import { sleep, startTcpProxy, waitFor } from "@truss/test-utils";
import type { TrussClient } from "@truss/client";
import { postgresOutbox, postgresStores } from "../src/index.js";
import { freshSchema, randomCjk, type FreshSchema } from "./support/postgres.js";
import { device, outboxRows, startRelayNode, transaction, type RelayNode } from "./support/relay.js";

let db: FreshSchema;
let node: RelayNode | undefined;
const clients: TrussClient[] = [];

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
  await db.pool.query(`DELETE FROM "${db.schema}".outbox`);
});

const alice = { companyId: "acme", userId: "alice", deviceId: "alice-phone" };
const bob = { companyId: "acme", userId: "bob", deviceId: "bob-laptop" };
/** Long enough for anything sent on loopback, and a relay poll, to have arrived. */
const SETTLE_MS = 300;

async function deviceOf(claims: typeof alice, event: string) {
  const made = await device(node!.server.url, claims, event);
  clients.push(made.client);
  return made;
}

describe("publishing in the application's transaction", () => {
  test("a rolled-back transaction publishes nothing, ever; a committed one publishes once", async () => {
    node = await startRelayNode(db.pool, db.schema);
    const phone = await deviceOf(alice, "expense:approved");
    const office = await deviceOf(bob, "project:updated");

    await expect(
      transaction(db.pool, async (tx) => {
        await node!.outbox.with(tx).toUser("acme", "alice").emit("expense:approved", { expenseId: "e-rolled-back" });
        await node!.outbox.with(tx).toCompany("acme").emit("project:updated", { projectId: "p-rolled-back" });
        throw new Error("a constraint failed");
      }),
    ).rejects.toThrow("a constraint failed");
    await transaction(db.pool, async (tx) => {
      await node!.outbox.with(tx).toUser("acme", "alice").emit("expense:approved", { expenseId: "e-1" });
      await node!.outbox.with(tx).toCompany("acme").emit("project:updated", { projectId: "p-1" });
    });

    await waitFor(() => phone.heard.length === 1 && office.heard.length === 1, { message: "the committed events" });
    await sleep(SETTLE_MS);
    expect(phone.heard).toEqual([{ expenseId: "e-1" }]);
    expect(office.heard).toEqual([{ projectId: "p-1" }]);
    expect(await outboxRows(db.pool, db.schema)).toEqual([]);
    expect(node.relay.stats).toMatchObject({ published: 2, failed: 0 });
  });

  test("nothing is published before the commit, even with the relay polling", async () => {
    node = await startRelayNode(db.pool, db.schema, { pollIntervalMs: 50 });
    const phone = await deviceOf(alice, "expense:approved");
    const tx = await db.pool.connect();
    try {
      await tx.query("BEGIN");
      await node.outbox.with(tx).toUser("acme", "alice").emit("expense:approved", { expenseId: "e-2" });
      await sleep(SETTLE_MS);
      expect(phone.heard).toEqual([]);
      await tx.query("COMMIT");
    } finally {
      tx.release();
    }
    await waitFor(() => phone.heard.length === 1, { message: "the event after the commit" });
    expect(phone.heard).toEqual([{ expenseId: "e-2" }]);
  });

  test("a device whose network was down at the commit gets each event once when it reconnects: its inbox, and the company stream", async () => {
    node = await startRelayNode(db.pool, db.schema);
    const proxy = await startTcpProxy(node.server.port);
    try {
      const phone = await device(proxy.url, alice, "expense:approved");
      clients.push(phone.client);
      const projects: unknown[] = [];
      phone.client.on("project:updated", (data) => void projects.push(data));
      // The device is in the company stream: it has a position to catch up from.
      await transaction(db.pool, (tx) => node!.outbox.with(tx).toCompany("acme").emit("project:updated", { projectId: "p-0" }));
      await waitFor(() => projects.length === 1, { message: "the first broadcast" });

      proxy.hold();
      proxy.cut();
      await waitFor(() => phone.client.status !== "connected", { message: "the device to notice the cut" });
      await transaction(db.pool, async (tx) => {
        await node!.outbox.with(tx).toUser("acme", "alice").emit("expense:approved", { expenseId: "e-3" });
        await node!.outbox.with(tx).toCompany("acme").emit("project:updated", { projectId: "p-3" });
      });
      await waitFor(async () => (await outboxRows(db.pool, db.schema)).length === 0, { message: "the relay to publish" });
      expect(phone.heard).toEqual([]);

      proxy.release();
      await waitFor(() => phone.heard.length === 1 && projects.length === 2, { message: "the inbox replay and the stream recovery" });
      await sleep(SETTLE_MS);
      expect(phone.heard).toEqual([{ expenseId: "e-3" }]);
      expect(projects).toEqual([{ projectId: "p-0" }, { projectId: "p-3" }]);
    } finally {
      await proxy.close();
    }
  });

  test("a row the engine refuses for good is marked failed with its code and the rows behind it still go", async () => {
    // The engine takes less than the outbox checked for, so a row it refuses reaches the table.
    node = await startRelayNode(db.pool, db.schema, { engine: { limits: { maxMessageBytes: 200 } } });
    const phone = await deviceOf(alice, "expense:approved");
    await transaction(db.pool, async (tx) => {
      const toAlice = node!.outbox.with(tx).toUser("acme", "alice");
      await toAlice.emit("expense:approved", { expenseId: "e-4" });
      await toAlice.emit("expense:approved", { expenseId: "e-big", note: "x".repeat(1000) });
      await toAlice.emit("expense:approved", { expenseId: "e-5" });
    });
    await waitFor(() => phone.heard.length === 2, { message: "the rows around the refused one" });
    await sleep(SETTLE_MS);
    expect(phone.heard).toEqual([{ expenseId: "e-4" }, { expenseId: "e-5" }]);
    const left = await outboxRows(db.pool, db.schema);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatchObject({ event: "expense:approved", failed_code: "PAYLOAD_TOO_LARGE" });
    expect(left[0]!.failed_message).toMatch(/200/);
    expect(node.relay.stats).toMatchObject({ published: 2, failed: 1 });
    const metrics = await node.server.engine.metrics();
    expect(metrics).toMatch(/^truss_outbox_failed_total\{code="PAYLOAD_TOO_LARGE"\} 1$/m);
    expect(metrics).toMatch(/^truss_outbox_published_total 2$/m);
    // Failed rows are never handed out again.
    await sleep(1200);
    expect(node.relay.stats.failed).toBe(1);
  });

  test("a table numbered afresh (restored from a backup, or created again) still publishes rows whose ids were used before", async () => {
    node = await startRelayNode(db.pool, db.schema);
    const phone = await deviceOf(alice, "expense:approved");
    const restart = () => db.pool.query(`TRUNCATE "${db.schema}".outbox RESTART IDENTITY`);
    await restart();
    await transaction(db.pool, (tx) => node!.outbox.with(tx).toUser("acme", "alice").emit("expense:approved", { expenseId: "e-first" }));
    await waitFor(() => phone.heard.length === 1, { message: "the first row" });
    await restart();
    await transaction(db.pool, (tx) => node!.outbox.with(tx).toUser("acme", "alice").emit("expense:approved", { expenseId: "e-second" }));
    await waitFor(() => phone.heard.length === 2, { message: "the row with the same id" });
    expect(phone.heard).toEqual([{ expenseId: "e-first" }, { expenseId: "e-second" }]);
  });

  test("a topic row reaches the topic's subscribers only", async () => {
    node = await startRelayNode(db.pool, db.schema, { engine: { topics: { patterns: ["project:{projectId}"] }, authorize: () => true } });
    const subscriber = await deviceOf(alice, "site-report:filed");
    const other = await deviceOf(bob, "site-report:filed");
    await subscriber.client.subscribe("project:p-17");
    await transaction(db.pool, (tx) => node!.outbox.with(tx).toTopic("acme", "project:p-17").emit("site-report:filed", { reportId: "r-1" }));
    await waitFor(() => subscriber.heard.length === 1, { message: "the topic event" });
    await sleep(SETTLE_MS);
    expect(subscriber.heard).toEqual([{ reportId: "r-1" }]);
    expect(other.heard).toEqual([]);
  });
});

describe("without NOTIFY", () => {
  test("with notify: false a transaction sends no notification, and the relay's poll publishes its row", async () => {
    node = await startRelayNode(db.pool, db.schema, { pollIntervalMs: 100 });
    const quiet = postgresOutbox(db.pool, { schema: db.schema, notify: false });
    const phone = await deviceOf(alice, "expense:approved");
    const listener = await db.pool.connect();
    const notifications: string[] = [];
    listener.on("notification", (message) => void notifications.push(message.channel));
    await listener.query("LISTEN truss_outbox");
    try {
      await transaction(db.pool, async (tx) => {
        await quiet.with(tx).toUser("acme", "alice").emit("expense:approved", { expenseId: "e-polled" });
      });
      await waitFor(() => phone.heard.length === 1, { message: "the polled row" });
      await transaction(db.pool, async (tx) => {
        await node!.outbox.with(tx).toUser("acme", "alice").emit("expense:approved", { expenseId: "e-notified" });
      });
      await waitFor(() => phone.heard.length === 2 && notifications.length === 1, { message: "the notified row and its NOTIFY" });
      expect(phone.heard).toEqual([{ expenseId: "e-polled" }, { expenseId: "e-notified" }]);
      // Only the second outbox (notify on, the default) sent one.
      expect(notifications).toEqual(["truss_outbox"]);
    } finally {
      await listener.query("UNLISTEN *");
      listener.release();
    }
  });
});

describe("checked at the call, inside the transaction", () => {
  test("data the engine would refuse, ids and topics it does not take, and protocol events are refused before any row is written", async () => {
    const outbox = postgresOutbox(db.pool, { schema: db.schema });
    const toAlice = outbox.with(db.pool).toUser("acme", "alice");
    await expect(toAlice.emit("expense:approved", { n: 10n })).rejects.toMatchObject({ code: "INVALID_PAYLOAD" });
    await expect(toAlice.emit("expense:approved", { note: "x".repeat(70_000) })).rejects.toMatchObject({ code: "PAYLOAD_TOO_LARGE" });
    await expect(toAlice.emit("inbox:message", {})).rejects.toThrow(TypeError);
    // Event names the engine's emit refuses: past 200 characters, a lone surrogate (which PostgreSQL would store as U+FFFD, another name).
    await expect(toAlice.emit("e".repeat(201), {})).rejects.toThrow(/well-formed Unicode of at most 200 characters/);
    await expect(toAlice.emit("e".repeat(1_000_000), {})).rejects.toThrow(TypeError);
    await expect(toAlice.emit("expense:\ud800", {})).rejects.toThrow(/well-formed Unicode of at most 200 characters/);
    await expect(toAlice.emit("expense:approved", {}, { idempotencyKey: "" })).rejects.toThrow(TypeError);
    await expect(outbox.with(db.pool).toTopic("acme", "not a topic").emit("x", {})).rejects.toThrow(TypeError);
    await expect(outbox.with(db.pool).toCompany("\ud800").emit("x", {})).rejects.toThrow(TypeError);
    expect(() => outbox.with({} as never)).toThrow(TypeError);
    expect(() => postgresOutbox(db.pool, { schema: "no; drop" })).toThrow(TypeError);
    expect(await outboxRows(db.pool, db.schema)).toEqual([]);
  });

  test("an id, topic, event or key PostgreSQL text cannot hold (U+0000), or an id or topic over 512 bytes, is refused with INVALID_PAYLOAD", async () => {
    const writer = postgresOutbox(db.pool, { schema: db.schema }).with(db.pool);
    const refused = [
      () => writer.toCompany("ac\u0000me").emit("x", {}),
      () => writer.toUser("acme", "al\u0000ice").emit("x", {}),
      () => writer.toCompany("acme").emit("x\u0000y", {}),
      () => writer.toCompany("acme").emit("x", {}, { idempotencyKey: "k\u0000" }),
      () => writer.toUser("acme", randomCjk(171)).emit("x", {}),
      () => writer.toCompany(randomCjk(171)).emit("x", {}),
    ];
    for (const [index, emit] of refused.entries()) {
      await expect(emit(), `emit ${index}`).rejects.toMatchObject({ code: "INVALID_PAYLOAD", message: expect.stringMatching(/U\+0000|bytes of UTF-8/) });
    }
    expect(await outboxRows(db.pool, db.schema)).toEqual([]);
    // At the limit, and U+0000 inside the data (JSON escapes it), are taken.
    await writer.toUser("acme", randomCjk(170)).emit("x", { note: "a\u0000b" });
    expect(await outboxRows(db.pool, db.schema)).toHaveLength(1);
  });

  test("the data written is the data at the call: changing the object afterwards changes nothing", async () => {
    const outbox = postgresOutbox(db.pool, { schema: db.schema });
    const data = { expenseId: "e-6", when: new Date("2026-01-02T03:04:05Z") };
    const written = outbox.with(db.pool).toUser("acme", "alice").emit("expense:approved", data);
    data.expenseId = "changed";
    await written;
    const { rows } = await db.pool.query(`SELECT data::text FROM "${db.schema}".outbox`);
    expect(JSON.parse(rows[0].data)).toEqual({ expenseId: "e-6", when: "2026-01-02T03:04:05.000Z" });
  });
});

/** What the undelivered handler of a node made by `startNode` was called with. */
const calls: Array<{ event: string; data: unknown; at: number }> = [];
/** A long engine delay: far longer than any test here waits. */
const LONG_AFTER_MS = 10_000;

/** A node whose engine calls the undelivered handler `afterMs` after a message no device took, unless the send says otherwise. */
function startNode(afterMs: number) {
  calls.length = 0;
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

describe("rows written around outbox.with(), by another release or by hand", () => {
  test("each malformed row is marked failed with a code; the rows of its stream behind it, and every other stream, still go", async () => {
    node = await startRelayNode(db.pool, db.schema, { pollIntervalMs: 50, engine: { logger: { warn: () => undefined, error: () => undefined } } });
    const phone = await deviceOf(alice, "expense:approved");
    const office = await deviceOf(bob, "project:updated");
    const insert = (columns: Record<string, string | null>) => {
      const names = Object.keys(columns);
      return db.pool.query(`INSERT INTO "${db.schema}".outbox (${names.join(", ")}) VALUES (${names.map((_, index) => `$${index + 1}`).join(", ")})`, Object.values(columns));
    };
    const toAlice = { stream: 'user:"acme":"alice"', kind: "user", company_id: "acme", user_id: "alice" };
    const toAcme = { stream: 'company:"acme"', kind: "company", company_id: "acme" };
    const nested = `${"[".repeat(200)}1${"]".repeat(200)}`;
    // What the table's constraints let through but outbox.with() never writes.
    const malformed: Array<Record<string, string | null>> = [
      { ...toAlice, user_id: null, event: "expense:approved", data: "{}" },
      { ...toAlice, user_id: "", event: "expense:approved", data: "{}" },
      { ...toAlice, event: "", data: "{}" },
      { ...toAlice, event: "inbox:message", data: "{}" },
      { ...toAlice, event: "expense:approved", data: nested },
      { ...toAlice, event: "expense:approved", data: "{}", idempotency_key: "k".repeat(5000) },
      { ...toAcme, company_id: "", event: "project:updated", data: "{}" },
      { ...toAcme, event: "project:updated", data: `{"note":"${"x".repeat(100_000)}"}` },
      { stream: 'topic:"acme":"project:p-1"', kind: "topic", company_id: "acme", topic: null, event: "project:updated", data: "{}" },
      { stream: 'topic:"acme":"no such topic!"', kind: "topic", company_id: "acme", topic: "no such topic!", event: "project:updated", data: "{}" },
    ];
    for (const row of malformed) await insert(row);
    // Behind them, on the same streams: rows as outbox.with() writes them.
    await transaction(db.pool, async (tx) => {
      await node!.outbox.with(tx).toUser("acme", "alice").emit("expense:approved", { expenseId: "e-after" });
      await node!.outbox.with(tx).toCompany("acme").emit("project:updated", { projectId: "p-after" });
    });

    await waitFor(() => phone.heard.length === 1 && office.heard.length === 1, { message: "the well-formed rows behind the malformed ones" });
    await waitFor(async () => (await outboxRows(db.pool, db.schema)).every((row) => row.failed_code !== null), { message: "every malformed row marked failed" });
    await sleep(SETTLE_MS);
    expect(phone.heard).toEqual([{ expenseId: "e-after" }]);
    expect(office.heard).toEqual([{ projectId: "p-after" }]);
    const left = await outboxRows(db.pool, db.schema);
    expect(left).toHaveLength(malformed.length);
    for (const row of left) expect(ERROR_CODES).toContain(row.failed_code);
    expect(node.relay.stats).toMatchObject({ published: 2, failed: malformed.length });
  });

  test("a row whose data is past what the relay reads of one row is marked failed PAYLOAD_TOO_LARGE without its data being read, and the rows behind it go", async () => {
    const errors: unknown[][] = [];
    // A bound of 10 KB stands in for the default 16 MiB: past it, a row's text never reaches Node.js.
    node = await startRelayNode(db.pool, db.schema, {
      pollIntervalMs: 50,
      source: { maxRowBytes: 10_000 },
      engine: { logger: { warn: () => undefined, error: (...args: unknown[]) => void errors.push(args) } },
    });
    const phone = await deviceOf(alice, "expense:approved");
    await db.pool.query(
      `INSERT INTO "${db.schema}".outbox (stream, kind, company_id, user_id, event, data) VALUES ('user:"acme":"alice"', 'user', 'acme', 'alice', 'expense:approved', $1)`,
      [JSON.stringify({ scan: "x".repeat(20_000) })],
    );
    await transaction(db.pool, (tx) => node!.outbox.with(tx).toUser("acme", "alice").emit("expense:approved", { expenseId: "e-after" }));

    await waitFor(() => phone.heard.length === 1, { message: "the row behind the large one" });
    // The device may hear the row before the relay's batch is settled in the table.
    await waitFor(async () => (await outboxRows(db.pool, db.schema)).length === 1, { message: "the batch settled" });
    expect(phone.heard).toEqual([{ expenseId: "e-after" }]);
    const left = await outboxRows(db.pool, db.schema);
    expect(left).toEqual([expect.objectContaining({ failed_code: "PAYLOAD_TOO_LARGE", failed_message: expect.stringMatching(/20\d{3} bytes of JSON.*at most 10000/) })]);
    // Counted and logged by the relay once the settle it awaits has answered.
    await waitFor(() => node!.relay.stats.failed === 1 && errors.length === 1, { message: "the failure counted and logged" });
    expect(node.relay.stats).toMatchObject({ published: 1, failed: 1 });
  });

  test("a row whose user id no store may take (too long for the inbox's index) is marked failed with INVALID_PAYLOAD at once, not retried", async () => {
    const engine = { ...postgresStores(db.pool, { schema: db.schema }), logger: { warn: () => undefined, error: () => undefined } };
    node = await startRelayNode(db.pool, db.schema, { pollIntervalMs: 50, engine });
    const office = await deviceOf(bob, "project:updated");
    // Written by hand: the outbox's own index holds the short stream key, the inbox's holds the id itself.
    await db.pool.query(`INSERT INTO "${db.schema}".outbox (stream, kind, company_id, user_id, event, data) VALUES ('user:"acme":"long"', 'user', 'acme', $1, 'expense:approved', '{}')`, [
      randomCjk(1000),
    ]);
    await transaction(db.pool, (tx) => node!.outbox.with(tx).toCompany("acme").emit("project:updated", { projectId: "p-after" }));

    await waitFor(() => office.heard.length === 1, { message: "the row of another stream" });
    await waitFor(async () => (await outboxRows(db.pool, db.schema))[0]?.failed_code === "INVALID_PAYLOAD", { message: "the row marked failed" });
    // The engine refuses an id past 256 characters before the store would (SQLSTATE 54000).
    expect(await outboxRows(db.pool, db.schema)).toEqual([expect.objectContaining({ failed_message: expect.stringMatching(/at most 256 characters/) })]);
    expect(node.relay.stats).toMatchObject({ published: 1, failed: 1, retried: 0 });
  });
});
