import { randomUUID } from "node:crypto";
import type { InboxMessage } from "@truss/protocol";
import { collect, connectAs, request, sleep, startTestServer, waitFor, type TestServer } from "@truss/test-utils";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { postgresInboxStore, postgresStores } from "../../src/stores/index.js";
import { freshSchema, type FreshSchema } from "../support/postgres.js";

/**
 * A device that stops connecting (a phone replaced, an app reinstalled with
 * a new device id) leaves its cursor behind. Once every message it could
 * point past has expired, the cursor changes nothing a device reads, so the
 * inbox sweep deletes it, a bounded batch a run; the device then reads from
 * the oldest kept message, which is what its cursor would have given it.
 */
describe("inbox cursors past the TTL", () => {
  let db: FreshSchema;
  let server: TestServer | undefined;
  const fresh = (name: string) => `${name}-${randomUUID()}`;
  const cursorsOf = async (user: { companyId: string; userId: string }) =>
    (await db.pool.query(`SELECT device_id FROM "${db.schema}".inbox_cursors WHERE company_id = $1 AND user_id = $2 ORDER BY device_id`, [user.companyId, user.userId])).rows.map(
      (row: { device_id: string }) => row.device_id,
    );

  beforeAll(async () => {
    db = await freshSchema();
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });
  afterAll(async () => {
    await db?.drop();
  });

  test("a device that stopped connecting loses its cursor to the sweep, and back on a new connection gets every kept message and none it read", async () => {
    const ttlMs = 400;
    server = await startTestServer({ ...postgresStores(db.pool, { schema: db.schema, inbox: { ttlMs, sweepIntervalMs: 100 } }) });
    const user = { companyId: fresh("company"), userId: "ann" };
    const toAnn = server.engine.toUser(user.companyId, user.userId);

    // The old phone reads and acknowledges a message, then never connects again.
    const oldPhone = await connectAs(server.url, { ...user, deviceId: "old-phone" });
    const read = collect<InboxMessage>(oldPhone, "inbox:message");
    const first = await toAnn.emit("expense:approved", { n: 1 });
    await waitFor(() => read.length === 1, { message: "the old phone's message" });
    expect((await request(oldPhone, "inbox:ack", { ids: [first.id] })).ok).toBe(true);
    oldPhone.close();

    // The user goes on with a laptop: the inbox is in use, only the phone's cursor is stale.
    const laptop = await connectAs(server.url, { ...user, deviceId: "laptop" });
    laptop.on("inbox:message", (message: InboxMessage) => laptop.emit("inbox:ack", { ids: [message.id] }));
    await sleep(ttlMs + 100);
    const later = await toAnn.emit("expense:approved", { n: 2 });
    await waitFor(async () => (await cursorsOf(user)).join() === "laptop", { message: "the sweep to delete the old phone's cursor" });

    const back = await connectAs(server.url, { ...user, deviceId: "old-phone" });
    const replayed = collect<InboxMessage>(back, "inbox:message");
    await waitFor(() => replayed.length >= 1, { message: "the replay" });
    await sleep(100);
    expect(replayed).toEqual([later]);
    back.close();
    laptop.close();
  });

  test("a sweep deletes at most its batch of cursors past the TTL, and keeps every cursor younger than it", async () => {
    const ttlMs = 300;
    // The store's own sweep waits a minute: the runs here are the SQL function's, one at a time.
    const inbox = postgresInboxStore({ pool: db.pool, schema: db.schema, ttlMs });
    const user = { companyId: fresh("company"), userId: fresh("user") };
    const first = (await inbox.append(user, "expense:approved", { n: 1 })).message;
    const stale = ["device-1", "device-2", "device-3", "device-4", "device-5"];
    for (const deviceId of stale) await inbox.ack({ ...user, deviceId }, first.id);
    await sleep(ttlMs + 100);
    const kept = (await inbox.append(user, "expense:approved", { n: 2 })).message;
    await inbox.ack({ ...user, deviceId: "fresh" }, kept.id);
    // What a stale device reads from its cursor is what it reads without one.
    expect(await inbox.read(user, await inbox.cursor({ ...user, deviceId: "device-1" }), 10)).toEqual([kept]);

    // Other tests' cursors share the table, so what one run deletes is counted over all of it.
    const sweep = () => db.pool.query(`SELECT "${db.schema}".inbox_sweep($1, 2)`, [ttlMs]);
    const allCursors = async () => Number((await db.pool.query(`SELECT count(*) AS n FROM "${db.schema}".inbox_cursors`)).rows[0].n);
    const before = await allCursors();
    await sweep();
    expect(before - (await allCursors())).toBe(2);
    for (let run = 0; run < 5; run += 1) await sweep();
    expect(await cursorsOf(user)).toEqual(["fresh"]);
    expect(await inbox.cursor({ ...user, deviceId: "device-1" })).toBeNull();
    expect(await inbox.read(user, null, 10)).toEqual([kept]);
    expect(await inbox.cursor({ ...user, deviceId: "fresh" })).toBe(kept.id);
  });
});
