import { randomUUID } from "node:crypto";
import { waitFor } from "@truss/test-utils";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { postgresInboxStore, postgresStores, postgresStreamStore } from "../../src/stores/index.js";
import { freshSchema, type FreshSchema } from "../support/postgres.js";

/**
 * What the conformance suites cannot see: the bounded sweep that clears
 * inboxes and streams nobody touches again, the cursor cap's rows and races, a document written in the
 * application's own transaction through the same SQL function the store
 * uses, and the options `postgresStores` refuses.
 */
describe("postgresStores", () => {
  let db: FreshSchema;
  const fresh = (name: string) => `${name}-${randomUUID()}`;

  beforeAll(async () => {
    db = await freshSchema();
  });
  afterAll(async () => {
    await db?.drop();
  });

  test("the inbox sweep clears a user whose every message expired, counts them, and deletes the device's cursor past them", async () => {
    const inbox = postgresInboxStore({ pool: db.pool, schema: db.schema, ttlMs: 200, sweepIntervalMs: 100 });
    const idle = { companyId: fresh("company"), userId: fresh("user") };
    const active = { companyId: idle.companyId, userId: fresh("user") };
    const appended = [];
    for (let index = 0; index < 3; index += 1) appended.push((await inbox.append(idle, "expense:approved", { index }, { idempotencyKey: `k${index}` })).message);
    await inbox.ack({ ...idle, deviceId: "phone" }, appended[2]!.id);
    const before = await inbox.dropped();
    await new Promise((resolve) => setTimeout(resolve, 300));

    // Another user's append starts the sweep; the idle user is never called again.
    await inbox.append(active, "expense:approved", { index: 0 });
    const rows = async (table: string) =>
      Number((await db.pool.query(`SELECT count(*) AS n FROM "${db.schema}".${table} WHERE company_id = $1 AND user_id = $2`, [idle.companyId, idle.userId])).rows[0].n);
    await waitFor(async () => (await rows("inbox_users")) === 0, { message: "the sweep cleared the idle user" });
    expect({ messages: await rows("inbox_messages"), keys: await rows("inbox_keys"), cursors: await rows("inbox_cursors") }).toEqual({ messages: 0, keys: 0, cursors: 0 });
    const after = await inbox.dropped();
    expect(after.expired - before.expired).toBe(3);
    expect(await inbox.cursor({ ...idle, deviceId: "phone" })).toBeNull();

    // Back after the sweep: a new message, a new id, and the old key is a new key.
    const again = await inbox.append(idle, "expense:approved", { index: 9 }, { idempotencyKey: "k0" });
    expect(again.duplicate).toBe(false);
    expect(await inbox.read(idle, null, 10)).toEqual([again.message]);
  });

  test("a user keeps maxCursorsPerUser cursors however many device ids they cycle through, and acks at the cap at once all land", async () => {
    const inbox = postgresInboxStore({ pool: db.pool, schema: db.schema, maxCursorsPerUser: 3 });
    const user = { companyId: fresh("company"), userId: fresh("user") };
    const devices = async () =>
      (await db.pool.query(`SELECT device_id FROM "${db.schema}".inbox_cursors WHERE company_id = $1 AND user_id = $2 ORDER BY device_id`, [user.companyId, user.userId])).rows.map(
        (row: { device_id: string }) => row.device_id,
      );
    const { message } = await inbox.append(user, "n", {});
    const [ms] = message.id.split("-");
    for (let index = 0; index < 20; index += 1) await inbox.ack({ ...user, deviceId: `device-${index}` }, message.id);
    expect(await devices()).toEqual(["device-17", "device-18", "device-19"]);

    // Cursors stored before the cap count as the oldest.
    await db.pool.query(`INSERT INTO "${db.schema}".inbox_cursors (company_id, user_id, device_id, ms, seq, moved) VALUES ($1, $2, 'old', $3, 0, 0)`, [user.companyId, user.userId, ms]);
    await inbox.ack({ ...user, deviceId: "device-17" }, `${ms}-1`);
    expect(await devices()).toEqual(["device-17", "device-18", "device-19"]);

    // Each ack forgets what others are not moving at that moment, so none waits on another.
    await Promise.all(Array.from({ length: 30 }, (_, index) => inbox.ack({ ...user, deviceId: `racer-${index % 10}` }, `${ms}-${2 + index}`)));
    await inbox.ack({ ...user, deviceId: "last" }, `${ms}-99`);
    expect(await devices()).toHaveLength(3);
    expect(await inbox.cursor({ ...user, deviceId: "last" })).toBe(`${ms}-99`);
    expect(() => postgresInboxStore({ pool: db.pool, schema: db.schema, maxCursorsPerUser: 0 })).toThrow(RangeError);
  });

  test("a stream idle past ttlMs + idleMs is swept, and its next call starts a new epoch", async () => {
    const streams = postgresStreamStore({ pool: db.pool, schema: db.schema, ttlMs: 100, idleMs: 100, sweepIntervalMs: 100 });
    const quiet = { companyId: fresh("company"), stream: "company" };
    const busy = { companyId: quiet.companyId, stream: `topic:${fresh("project")}` };
    const first = await streams.append(quiet, "project:updated", { n: 1 }, { idempotencyKey: "row-1" });
    await new Promise((resolve) => setTimeout(resolve, 300));

    await streams.append(busy, "project:updated", { n: 1 });
    const rows = async (table: string) =>
      Number((await db.pool.query(`SELECT count(*) AS n FROM "${db.schema}".${table} WHERE company_id = $1 AND stream = $2`, [quiet.companyId, quiet.stream])).rows[0].n);
    await waitFor(async () => (await rows("streams")) === 0, { message: "the sweep forgot the quiet stream" });
    expect({ entries: await rows("stream_entries"), keys: await rows("stream_keys") }).toEqual({ entries: 0, keys: 0 });

    const read = await streams.read(quiet, 0, 10);
    expect(read.epoch).not.toBe(first.epoch);
    expect(read).toMatchObject({ top: 0, entries: [], gap: null });
    const next = await streams.append(quiet, "project:updated", { n: 2 }, { idempotencyKey: "row-1" });
    expect({ epoch: next.epoch, offset: next.entry.offset, duplicate: next.duplicate }).toEqual({ epoch: read.epoch, offset: 1, duplicate: false });
  });

  test("a stream idle past ttlMs + idleMs but not yet swept starts a new epoch on its next call", async () => {
    const streams = postgresStreamStore({ pool: db.pool, schema: db.schema, ttlMs: 100, idleMs: 100 });
    const key = { companyId: fresh("company"), stream: "company" };
    const first = await streams.append(key, "project:updated", { n: 1 });
    await new Promise((resolve) => setTimeout(resolve, 150));
    // Within ttl + idle a read keeps the epoch (its entry expired) and keeps the stream alive.
    expect(await streams.read(key, 0, 10)).toEqual({ epoch: first.epoch, top: 1, entries: [], gap: "HISTORY_EXPIRED" });
    await new Promise((resolve) => setTimeout(resolve, 250));
    const read = await streams.read(key, 0, 10);
    expect(read.epoch).not.toBe(first.epoch);
    expect(read).toMatchObject({ top: 0, entries: [], gap: null });
  });

  test("a read of a live stream takes no lock and writes nothing, so it answers while a transaction holds the stream's row", async () => {
    const streams = postgresStreamStore({ pool: db.pool, schema: db.schema, timeoutMs: 500 });
    const key = { companyId: fresh("company"), stream: "company" };
    const appended = [];
    for (let n = 0; n < 3; n += 1) appended.push(await streams.append(key, "project:updated", { n }));
    const version = async () =>
      (await db.pool.query(`SELECT xmin::text AS v FROM "${db.schema}".streams WHERE company_id = $1 AND stream = $2`, [key.companyId, key.stream])).rows[0].v;
    const before = await version();
    const holder = await db.pool.connect();
    try {
      await holder.query("BEGIN");
      await holder.query(`SELECT 1 FROM "${db.schema}".streams WHERE company_id = $1 AND stream = $2 FOR UPDATE`, [key.companyId, key.stream]);
      const reads = await Promise.all(Array.from({ length: 10 }, () => streams.read(key, 1, 10)));
      for (const read of reads) expect(read).toEqual({ epoch: appended[0]!.epoch, top: 3, entries: appended.slice(1).map((result) => result.entry), gap: null });
      // An append needs the lock: it waits for the transaction, and gives up within its timeout.
      await expect(streams.append(key, "project:updated", { n: 3 })).rejects.toThrow();
      await holder.query("ROLLBACK");
    } finally {
      holder.release();
    }
    expect(await version(), "the reads wrote no new row version").toBe(before);
  });

  test("an application's transaction writes a document through the store's SQL function: a rollback leaves nothing, a commit is what the store reads", async () => {
    const { documents } = postgresStores(db.pool, { schema: db.schema });
    const key = { companyId: fresh("company"), type: "expense", id: fresh("expense") };
    const write = (client: { query: typeof db.pool.query }, data: object) =>
      client.query(
        `SELECT outcome FROM "${db.schema}".document_compare_and_set($1, $2, $3, 0, $4, $5, 'route', NULL, '', 0, $6, 0, 100, 4194304, 1000, 100, 1000)`,
        [key.companyId, key.type, key.id, JSON.stringify(data), Buffer.byteLength(JSON.stringify(data)), Date.now()],
      );
    const client = await db.pool.connect();
    try {
      await client.query("BEGIN");
      expect((await write(client, { amount: 10 })).rows[0].outcome).toBe(1);
      await client.query("ROLLBACK");
      expect(await documents.get(key)).toBeNull();

      await client.query("BEGIN");
      await write(client, { amount: 12 });
      await client.query("COMMIT");
    } finally {
      client.release();
    }
    expect(await documents.get(key)).toMatchObject({ version: 1, data: { amount: 12 }, updatedBy: "route" });
    const { rows } = await db.pool.query(`SELECT data->>'amount' AS amount FROM "${db.schema}".documents WHERE company_id = $1 AND id = $2`, [key.companyId, key.id]);
    expect(rows).toEqual([{ amount: "12" }]);
  });

  test("a call that times out waiting for a row lock gives up on the server too, so it never commits later", async () => {
    const { documents, inbox, streams } = postgresStores(db.pool, { schema: db.schema, timeoutMs: 500 });
    const doc = { companyId: fresh("company"), type: "project", id: fresh("project") };
    const user = { companyId: doc.companyId, userId: fresh("user") };
    const stream = { companyId: doc.companyId, stream: "company" };
    await documents.compareAndSet(doc, 0, { n: 1 }, "ann");
    const first = (await inbox.append(user, "expense:approved", { n: 1 })).message;
    const { epoch } = await streams.append(stream, "project:updated", { n: 1 });

    // An application's transaction holds the three rows the stores lock.
    const holder = await db.pool.connect();
    try {
      await holder.query("BEGIN");
      await holder.query(`SELECT 1 FROM "${db.schema}".documents WHERE company_id = $1 AND id = $2 FOR UPDATE`, [doc.companyId, doc.id]);
      await holder.query(`SELECT 1 FROM "${db.schema}".inbox_users WHERE company_id = $1 AND user_id = $2 FOR UPDATE`, [user.companyId, user.userId]);
      await holder.query(`SELECT 1 FROM "${db.schema}".streams WHERE company_id = $1 AND stream = $2 FOR UPDATE`, [stream.companyId, stream.stream]);
      const start = performance.now();
      const settled = await Promise.allSettled([
        documents.compareAndSet(doc, 1, { n: 2 }, "ann"),
        inbox.append(user, "expense:approved", { n: 2 }),
        streams.append(stream, "project:updated", { n: 2 }),
      ]);
      expect(settled.map((result) => result.status)).toEqual(["rejected", "rejected", "rejected"]);
      expect(performance.now() - start).toBeLessThan(1000);
      await holder.query("ROLLBACK");
    } finally {
      holder.release();
    }
    // Had the statements kept waiting on the server, they would commit now that the locks are free.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await documents.get(doc))?.version).toBe(1);
    expect(await inbox.read(user, null, 10)).toEqual([first]);
    expect(await streams.read(stream, 0, 10)).toMatchObject({ epoch, top: 1 });
  });

  test("ids, event names and keys with U+0000, which PostgreSQL text cannot hold, are refused with INVALID_PAYLOAD and nothing is stored", async () => {
    const { documents, inbox, streams } = postgresStores(db.pool, { schema: db.schema });
    const companyId = fresh("company");
    const nul = "a\u0000b";
    const calls: Array<() => Promise<unknown>> = [
      () => documents.compareAndSet({ companyId, type: "project", id: nul }, 0, { n: 1 }, "ann"),
      () => documents.compareAndSet({ companyId, type: "project", id: "p" }, 0, { n: 1 }, nul),
      () => documents.compareAndSet({ companyId, type: "project", id: "p" }, 0, { n: 1 }, "ann", { id: nul, writer: "ann", madeAt: Date.now() }),
      () => documents.get({ companyId: nul, type: "project", id: "p" }),
      () => documents.mutation({ companyId, type: "project", id: "p" }, { id: "m", writer: nul, madeAt: Date.now() }),
      () => inbox.append({ companyId, userId: nul }, "expense:approved", {}),
      () => inbox.append({ companyId, userId: "ann" }, nul, {}),
      () => inbox.append({ companyId, userId: "ann" }, "expense:approved", {}, { idempotencyKey: nul }),
      () => inbox.ack({ companyId, userId: "ann", deviceId: nul }, "1-0"),
      () => inbox.cursor({ companyId, userId: "ann", deviceId: nul }),
      () => streams.append({ companyId, stream: `topic:${nul}` }, "project:updated", {}),
      () => streams.append({ companyId, stream: "company" }, "project:updated", {}, { idempotencyKey: nul }),
      () => streams.read({ companyId: nul, stream: "company" }, 0, 10),
    ];
    for (const [index, call] of calls.entries()) await expect(call(), `call ${index}`).rejects.toMatchObject({ code: "INVALID_PAYLOAD" });
    const { rows } = await db.pool.query(
      `SELECT (SELECT count(*) FROM "${db.schema}".documents WHERE company_id = $1) + (SELECT count(*) FROM "${db.schema}".inbox_users WHERE company_id = $1)
       + (SELECT count(*) FROM "${db.schema}".streams WHERE company_id = $1) AS n`,
      [companyId],
    );
    expect(Number(rows[0].n)).toBe(0);
    // The same text without it works: data may hold U+0000, since JSON escapes it.
    expect((await documents.compareAndSet({ companyId, type: "project", id: "p" }, 0, { note: nul }, "ann")).ok).toBe(true);
    expect((await documents.get({ companyId, type: "project", id: "p" }))?.data).toEqual({ note: nul });
  });

  test("the schema must be an SQL identifier, and the timeout and sweep options positive integers", () => {
    expect(() => postgresStores(db.pool, { schema: 'truss"; DROP SCHEMA public; --' })).toThrow(TypeError);
    expect(() => postgresStores({} as never)).toThrow(TypeError);
    expect(() => postgresStores(db.pool, { timeoutMs: 0 })).toThrow(RangeError);
    expect(() => postgresStores(db.pool, { inbox: { sweepBatch: 1.5 } })).toThrow(RangeError);
    expect(() => postgresStores(db.pool, { streams: { size: -1 } })).toThrow(RangeError);
    expect(() => postgresStores(db.pool, { documents: { maxHistory: 0 } })).toThrow(RangeError);
  });
});
