/**
 * The SQLite outbox as the relay's source (`OutboxSource` of `@truss/core`),
 * on one file shared by two connections as two server processes share it:
 * claims hold whole streams, oldest first; a settled batch removes what was
 * done, keeps what failed for good out of the way, and gives the rest back;
 * a claim whose relay died is taken over once its lease runs out.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import Database from "better-sqlite3";
import { openDatabase, type Db } from "../src/db.js";
import { sqliteOutbox, type SqliteOutbox } from "../src/store/sqlite-outbox.js";

describe("the SQLite outbox source", () => {
  let dir: string;
  let first: Db;
  let second: Db;
  let clock = 1_000_000;
  let writer: SqliteOutbox;
  let other: SqliteOutbox;

  const topic = (topicName: string) => ({ kind: "topic" as const, companyId: "northwind", topic: topicName });
  const write = (target: ReturnType<typeof topic>, event: string, n: number) =>
    first.transaction(() => writer.insert([{ target, event, data: { n }, options: undefined }])).immediate();

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "erp-sqlite-outbox-"));
    first = openDatabase(join(dir, "erp.sqlite"));
    second = openDatabase(join(dir, "erp.sqlite"));
    writer = sqliteOutbox(first, { now: () => clock });
    other = sqliteOutbox(second, { now: () => clock });
  });
  afterEach(() => {
    first.close();
    second.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a claim holds its streams: another connection's claim takes only other streams, and each stream comes oldest first", async () => {
    write(topic("project:a"), "project:updated", 1);
    write(topic("project:b"), "project:updated", 1);
    write(topic("project:a"), "project:updated", 2);
    const one = writer.source({ leaseMs: 10_000 });
    const two = other.source({ leaseMs: 10_000 });

    const batch = (await one.claim(1))!;
    expect(batch.rows.map((row) => [row.target, row.data])).toEqual([[topic("project:a"), { n: 1 }]]);
    // project:a is held (even its row not in the batch); project:b is free.
    const next = (await two.claim(10))!;
    expect(next.rows.map((row) => [row.target, row.data])).toEqual([[topic("project:b"), { n: 1 }]]);
    expect(await two.claim(10)).toBeNull();

    await batch.settle({ done: [batch.rows[0]!.id], failed: [] });
    const rest = (await two.claim(10))!;
    expect(rest.rows.map((row) => row.data)).toEqual([{ n: 2 }]);
    // Each row's id is unique, so a relayed-twice row publishes once.
    expect(new Set([batch.rows[0]!.id, next.rows[0]!.id, rest.rows[0]!.id]).size).toBe(3);
  });

  test("settling removes what was done, keeps failed rows out of the way, and gives the rest back to be claimed first", async () => {
    for (let n = 1; n <= 3; n += 1) write(topic("company:inventory"), "stock:updated", n);
    const source = writer.source();
    const batch = (await source.claim(10))!;
    const [a, b, c] = batch.rows;
    await batch.settle({ done: [a!.id], failed: [{ id: b!.id, code: "PAYLOAD_TOO_LARGE", message: "too big" }] });
    expect(writer.count()).toBe(2);
    expect(first.prepare("SELECT failed_code AS code FROM truss_outbox WHERE row_key = ?").get(b!.id)).toEqual({ code: "PAYLOAD_TOO_LARGE" });
    // c was neither done nor failed (a transient failure): it comes back, and the failed row never does.
    const again = (await source.claim(10))!;
    expect(again.rows.map((row) => row.id)).toEqual([c!.id]);
    await again.settle({ done: [c!.id], failed: [] });
    expect(await source.claim(10)).toBeNull();
    expect(writer.count()).toBe(1);
  });

  test("rows a dead relay claimed go to another once the lease runs out", async () => {
    write(topic("project:a"), "project:updated", 1);
    const dead = writer.source({ leaseMs: 5_000 });
    expect((await dead.claim(10))!.rows).toHaveLength(1);
    const survivor = other.source({ leaseMs: 5_000 });
    expect(await survivor.claim(10)).toBeNull();
    clock += 5_001;
    expect((await survivor.claim(10))!.rows.map((row) => row.data)).toEqual([{ n: 1 }]);
  });

  test("wait resolves on a wake-up after commit, on its timeout, and on abort", async () => {
    const source = writer.source();
    const controller = new AbortController();
    const started = Date.now();
    const woken = source.wait(10_000, controller.signal);
    writer.notify();
    await woken;
    expect(Date.now() - started).toBeLessThan(1_000);
    const timedOut = Date.now();
    await source.wait(50, controller.signal);
    expect(Date.now() - timedOut).toBeGreaterThanOrEqual(45);
    const aborted = source.wait(10_000, controller.signal);
    controller.abort();
    await aborted;
  });

  test("data the engine would refuse never reaches the table, and rolls the write back", () => {
    write(topic("project:a"), "project:updated", 1);
    expect(() => first.transaction(() => writer.insert([{ target: topic("not a topic!"), event: "project:updated", data: {}, options: undefined }])).immediate()).toThrow(
      TypeError,
    );
    expect(writer.count()).toBe(1);
  });

  test("a toUser row keeps its undelivered choice for the relay; a bad one, or one on a topic row, never reaches the table", async () => {
    const chloe = { kind: "user" as const, companyId: "northwind", userId: "u-chloe" };
    first
      .transaction(() =>
        writer.insert([
          { target: chloe, event: "expense:rejected", data: { n: 1 }, options: { undelivered: false } },
          { target: chloe, event: "notification:new", data: { n: 2 }, options: { undelivered: { afterMs: 5000 } } },
          { target: chloe, event: "notification:new", data: { n: 3 }, options: undefined },
        ]),
      )
      .immediate();
    const batch = (await other.source().claim(10))!;
    expect(batch.rows.map((row) => [row.event, row.undelivered])).toEqual([
      ["expense:rejected", false],
      ["notification:new", { afterMs: 5000 }],
      ["notification:new", undefined],
    ]);
    expect(batch.rows[2]).not.toHaveProperty("undelivered");

    for (const [target, options] of [
      [chloe, { undelivered: { afterMs: -1 } }],
      [topic("project:a"), { undelivered: false }],
    ] as const) {
      expect(() => first.transaction(() => writer.insert([{ target, event: "notification:new", data: {}, options: options as never }])).immediate()).toThrow(TypeError);
    }
    expect(writer.count()).toBe(3);
  });

  test("a file whose outbox was made before rows kept their undelivered choice gets the column, and its rows publish as before", async () => {
    const path = join(dir, "old.sqlite");
    const old = new Database(path);
    old.exec(`CREATE TABLE truss_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, row_key TEXT NOT NULL UNIQUE, stream TEXT NOT NULL, target TEXT NOT NULL,
      event TEXT NOT NULL, data TEXT, idempotency_key TEXT, created_at INTEGER NOT NULL, claimed_by TEXT, claimed_until INTEGER,
      failed_code TEXT, failed_message TEXT, failed_at INTEGER)`);
    old.prepare("INSERT INTO truss_outbox (row_key, stream, target, event, data, created_at) VALUES ('r-1', 's', ?, 'notification:new', '{}', 1)").run(
      JSON.stringify({ kind: "user", companyId: "northwind", userId: "u-chloe" }),
    );
    old.close();
    const reopened = openDatabase(path);
    try {
      const batch = (await sqliteOutbox(reopened, { now: () => clock }).source().claim(10))!;
      expect(batch.rows).toEqual([expect.objectContaining({ id: "r-1", event: "notification:new" })]);
      expect(batch.rows[0]).not.toHaveProperty("undelivered");
    } finally {
      reopened.close();
    }
  });
});
