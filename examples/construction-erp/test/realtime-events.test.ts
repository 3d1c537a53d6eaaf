import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { catalog } from "../src/catalog.js";
import { BACKENDS, call, EventLog, login, openSocket, outboxDrained, request, startErpOn, subscribe, watch, type LoggedIn, type RunningErp } from "./helpers.js";

/** Every Northwind project's topic and the staff feeds, as a Northwind dashboard subscribes. */
const NORTHWIND_STAFF_TOPICS = ["project:p-riverside", "project:p-harbor", "project:p-elm", "company:projects", "company:inventory", "company:invoices"];

/**
 * REST changes reach the right company's sockets as the catalog's events,
 * and never the other company's. Each socket subscribes to the topics a
 * dashboard of its user would. The Globex "fence" makes the negative checks
 * exact rather than timed: Globex's own change commits after the Northwind
 * one; once it has arrived and the outbox is empty, everything committed
 * before has been written to the sockets, and a request answered after that
 * (a socket's messages arrive in order) means anything misrouted would
 * already be in the log.
 */
describe.each(BACKENDS)("REST changes emit the catalog's events to the right company, on %s", (backend) => {
  let erp: RunningErp;
  let alice: LoggedIn;
  let ben: LoggedIn;
  let gus: LoggedIn;
  const sockets: Socket[] = [];
  let aliceLog: EventLog;
  let benLog: EventLog;
  let gusLog: EventLog;
  let fenceCount = 0;

  /** Makes a Globex change and waits for Globex's socket to hear it; see the describe's comment. */
  async function fence(): Promise<void> {
    fenceCount += 1;
    const { status, body } = await call(erp.url, gus.token, "POST", "/api/inventory/s-gravel/adjust", { delta: 1, reason: `fence ${fenceCount}` });
    expect(status).toBe(200);
    await gusLog.waitFor("stock:updated", (data) => data.reason === `fence ${fenceCount}` && data.item.quantity === body.quantity);
    await outboxDrained(erp);
    expect(await request(sockets[2]!, "presence:list", {})).toMatchObject({ ok: true });
  }

  /** Events Globex received other than the fences. */
  const globexLeaks = () => gusLog.events.filter((entry) => !(entry.event === "stock:updated" && String(entry.data.reason).startsWith("fence")) && !entry.event.startsWith("presence:"));

  beforeAll(async () => {
    erp = await startErpOn(backend);
    [alice, ben, gus] = await Promise.all([login(erp.url, "alice@northwind.test"), login(erp.url, "ben@northwind.test"), login(erp.url, "gus@globex.test")]);
    const devices = await Promise.all([
      openSocket(erp.url, alice.token, "alice-laptop"),
      openSocket(erp.url, ben.token, "ben-phone"),
      openSocket(erp.url, gus.token, "gus-laptop"),
    ]);
    sockets.push(...devices.map((device) => device.socket));
    [aliceLog, benLog, gusLog] = devices.map((device) => device.log) as [EventLog, EventLog, EventLog];
    await subscribe(devices[0].socket, ...NORTHWIND_STAFF_TOPICS);
    await subscribe(devices[1].socket, ...NORTHWIND_STAFF_TOPICS);
    await subscribe(devices[2].socket, "project:p-annex", "project:p-hangar", "company:projects", "company:inventory", "company:invoices");
  });

  afterAll(async () => {
    for (const socket of sockets) socket.disconnect();
    await erp?.close();
  });

  test("a budget change reaches every Northwind socket as project:updated, and no Globex socket", async () => {
    const { status, body } = await call(erp.url, ben.token, "PATCH", "/api/projects/p-riverside", { budget: 4_500_000 });
    expect(status).toBe(200);
    expect(body).toMatchObject({ id: "p-riverside", budget: 4_500_000, spent: 1_830_000 });

    for (const log of [aliceLog, benLog]) {
      const event = await log.waitFor("project:updated", (data) => data.id === "p-riverside" && data.budget === 4_500_000);
      expect(catalog.server["project:updated"].parse(event)).toEqual(body);
    }
    await fence();
    expect(globexLeaks()).toEqual([]);
  });

  test("creating and deleting a project emits project:created to the staff feed and project:deleted to its topic; members may not delete", async () => {
    const created = await call(erp.url, alice.token, "POST", "/api/projects", { name: "Depot 7", budget: 250_000 });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: "Depot 7", status: "planned", budget: 250_000, spent: 0, site: "" });
    await benLog.waitFor("project:created", (data) => data.id === created.body.id);
    // As the dashboard does: a new project's own topic, for its later changes.
    await subscribe(sockets[1]!, `project:${created.body.id}`);

    const refused = await call(erp.url, ben.token, "DELETE", `/api/projects/${created.body.id}`);
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe("FORBIDDEN");

    expect((await call(erp.url, alice.token, "DELETE", `/api/projects/${created.body.id}`)).status).toBe(204);
    expect(await benLog.waitFor("project:deleted", (data) => data.id === created.body.id)).toEqual({ id: created.body.id });
    expect((await call(erp.url, alice.token, "GET", `/api/projects/${created.body.id}`)).status).toBe(404);
    await fence();
    expect(globexLeaks()).toEqual([]);
  });

  test("taking stock below the reorder level emits stock:updated, then reorder:triggered once", async () => {
    // Rebar starts at 14 t with a reorder level of 10.
    const first = await call(erp.url, ben.token, "POST", "/api/inventory/s-rebar/adjust", { delta: -3, reason: "slab L12" });
    expect(first.status).toBe(200);
    expect(first.body.quantity).toBe(11);
    const update = await aliceLog.waitFor("stock:updated", (data) => data.reason === "slab L12");
    expect(catalog.server["stock:updated"].parse(update)).toEqual({ item: first.body, delta: -3, reason: "slab L12", updatedBy: "u-ben" });

    const second = await call(erp.url, ben.token, "POST", "/api/inventory/s-rebar/adjust", { delta: -2, reason: "slab L12, part 2" });
    expect(second.body.quantity).toBe(9);
    const reorder = await aliceLog.waitFor("reorder:triggered");
    expect(reorder).toEqual({ item: second.body, suggestedQuantity: 11 });
    // The manager also gets a durable notification about it.
    const inbox = await aliceLog.waitFor("inbox:message", (message) => message.event === "notification:new" && message.data.kind === "stock");
    expect(inbox.data.title).toBe("Reorder Rebar 12 mm");

    // Already below the level: no second trigger.
    await call(erp.url, ben.token, "POST", "/api/inventory/s-rebar/adjust", { delta: -1, reason: "offcuts" });
    await aliceLog.waitFor("stock:updated", (data) => data.reason === "offcuts");
    expect(aliceLog.of("reorder:triggered")).toHaveLength(1);

    const tooMuch = await call(erp.url, ben.token, "POST", "/api/inventory/s-rebar/adjust", { delta: -100 });
    expect(tooMuch.status).toBe(409);
    expect(tooMuch.body.error.code).toBe("INSUFFICIENT_STOCK");
    await fence();
    expect(globexLeaks()).toEqual([]);
  });

  test("adding an item emits item:added; a duplicate SKU is refused", async () => {
    const item = { sku: "PPE-G", name: "Safety gloves", unit: "pair", quantity: 120, reorderLevel: 40, location: "Site office" };
    const added = await call(erp.url, alice.token, "POST", "/api/inventory", item);
    expect(added.status).toBe(201);
    expect(await benLog.waitFor("item:added", (data) => data.sku === "PPE-G")).toEqual(added.body);
    expect((await call(erp.url, alice.token, "POST", "/api/inventory", item)).status).toBe(409);
  });

  test("paying an invoice emits invoice:paid, payment:processed and the project's new spend", async () => {
    const before = (await call(erp.url, alice.token, "GET", "/api/projects/p-riverside")).body;
    expect((await call(erp.url, ben.token, "POST", "/api/invoices/i-atlas/pay", {})).status).toBe(403);
    const paid = await call(erp.url, alice.token, "POST", "/api/invoices/i-atlas/pay", { method: "card" });
    expect(paid.status).toBe(200);
    expect(await benLog.waitFor("invoice:paid")).toMatchObject({ id: "i-atlas", status: "paid", amount: 18_500 });
    expect(catalog.server["payment:processed"].parse(await benLog.waitFor("payment:processed"))).toMatchObject({
      invoiceId: "i-atlas",
      amount: 18_500,
      method: "card",
      processedBy: "u-alice",
    });
    await benLog.waitFor("project:updated", (data) => data.id === "p-riverside" && data.spent === before.spent + 18_500);
    expect((await call(erp.url, alice.token, "POST", "/api/invoices/i-atlas/pay", {})).status).toBe(409);
    await fence();
    expect(globexLeaks()).toEqual([]);
  });

  test("assigning a task sends task:assigned and a notification to the assignee's inbox", async () => {
    const assigned = await call(erp.url, alice.token, "POST", "/api/tasks/t-scaffold/assign", { assigneeId: "u-ben" });
    expect(assigned.status).toBe(200);
    const message = await benLog.waitFor("inbox:message", (entry) => entry.event === "task:assigned");
    expect(message.data).toEqual({ task: assigned.body, assignedBy: "u-alice" });
    const notification = await benLog.waitFor("inbox:message", (entry) => entry.event === "notification:new" && entry.data.kind === "task");
    expect(notification.data.body).toContain("Inspect scaffolding on span 3");
    expect(aliceLog.of("inbox:message").filter((entry) => entry.event === "task:assigned")).toEqual([]);
  });

  test("a REST document update emits document:updated to its watchers; a stale edit of the same field is a 409 conflict", async () => {
    const path = "/api/documents/site-report/riverside-daily";
    // With a policy, document:updated goes only to the sockets watching the document.
    expect(await watch(sockets[1]!, "site-report", "riverside-daily")).toMatchObject({ version: 1 });
    const current = (await call(erp.url, ben.token, "GET", path)).body;
    expect(current).toMatchObject({ version: 1, data: { notes: "Crane inspection at 14:00." } });

    const saved = await call(erp.url, alice.token, "PATCH", path, { baseVersion: 1, changes: { notes: "Crane inspection moved to 15:00." } });
    expect(saved.status).toBe(200);
    expect(saved.body).toMatchObject({ status: "applied", document: { version: 2, updatedBy: "u-alice" } });
    expect(await benLog.waitFor("document:updated")).toMatchObject({ type: "site-report", id: "riverside-daily", version: 2, changedFields: ["notes"] });

    const stale = await call(erp.url, ben.token, "PATCH", path, { baseVersion: 1, changes: { notes: "Crane inspection cancelled." } });
    expect(stale.status).toBe(409);
    expect(stale.body.conflicts).toEqual([
      { field: "notes", base: "Crane inspection at 14:00.", current: "Crane inspection moved to 15:00.", incoming: "Crane inspection cancelled." },
    ]);

    const merged = await call(erp.url, ben.token, "PATCH", path, { baseVersion: 1, changes: { weather: "Rain from noon" } });
    expect(merged.body).toMatchObject({ status: "merged", document: { version: 3, data: { weather: "Rain from noon", notes: "Crane inspection moved to 15:00." } } });

    const history = (await call(erp.url, ben.token, "GET", `${path}/history?limit=10`)).body;
    expect(history.map((version: { version: number }) => version.version)).toEqual([3, 2, 1]);
    const rolledBack = await call(erp.url, alice.token, "POST", `${path}/rollback`, { toVersion: 1 });
    expect(rolledBack.body).toMatchObject({ version: 4, data: { notes: "Crane inspection at 14:00." } });
    await fence();
    expect(globexLeaks()).toEqual([]);
  });
});
