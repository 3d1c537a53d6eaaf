/**
 * Publishing through the outbox, on the embedded SQLite file and on
 * PostgreSQL: a route's events are written in the transaction of its change
 * and relayed after commit, so a committed change reaches each device
 * exactly once (also one that connects only later) and a rolled-back one
 * reaches nobody.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { BACKENDS, call, login, openSocket, outboxDrained, request, startErp, startErpOn, subscribe, type Device, type LoggedIn, type RunningErp } from "./helpers.js";
import { createTestDatabase, type TestDatabase } from "./postgres.js";

describe.each(["sqlite", "postgres"] as const)("the ERP publishes through its outbox on %s", (backend) => {
  let erp: RunningErp;
  let database: TestDatabase | undefined;
  let sqliteDir: string | undefined;
  let alice: LoggedIn;
  let ben: LoggedIn;
  let gus: LoggedIn;
  const sockets: Socket[] = [];
  /** The operation whose transaction the next write fails in, after its rows and its outbox rows are written. */
  let failIn: string | null = null;

  const open = async (user: LoggedIn, deviceId: string): Promise<Device> => {
    const device = await openSocket(erp.url, user.token, deviceId);
    sockets.push(device.socket);
    return device;
  };
  const expenseEvents = (device: Device, id: string) =>
    device.log.of("inbox:message").filter((message) => message.event.startsWith("expense:") && message.data.id === id);

  beforeAll(async () => {
    const beforeCommit = (operation: string) => {
      if (operation === failIn) {
        failIn = null;
        throw new Error(`injected failure before ${operation} commits`);
      }
    };
    if (backend === "postgres") {
      database = await createTestDatabase("outbox");
      erp = await startErp({ databaseUrl: database.url, beforeCommit });
    } else {
      sqliteDir = mkdtempSync(join(tmpdir(), "erp-outbox-"));
      erp = await startErp({ databasePath: join(sqliteDir, "erp.sqlite"), beforeCommit });
    }
    expect(erp.database).toBe(backend);
    [alice, ben, gus] = await Promise.all([login(erp.url, "alice@northwind.test"), login(erp.url, "ben@northwind.test"), login(erp.url, "gus@globex.test")]);
  });

  afterAll(async () => {
    for (const socket of sockets) socket.disconnect();
    await erp?.close();
    await database?.drop();
    if (sqliteDir) rmSync(sqliteDir, { recursive: true, force: true });
  });

  test("an approval whose transaction rolls back publishes nothing; once it commits, it reaches Ben's laptop and his phone (connected later) exactly once", async () => {
    // Ben's phone was online once, so the server knows the device; then it goes offline.
    const phone = await open(ben, "ben-phone");
    phone.socket.disconnect();
    const laptop = await open(ben, "ben-laptop");
    await subscribe(laptop.socket, "project:p-riverside");

    // The decision, the project's spend and the outbox rows are written, then the transaction fails.
    failIn = "expenses.decide";
    const failed = await call(erp.url, alice.token, "POST", "/api/expenses/e-pump/approve", {});
    expect(failed.status).toBe(500);
    expect(failIn).toBeNull();
    expect(await erp.data.pendingOutboxRows()).toBe(0);
    expect((await erp.data.expenses.get("northwind", "e-pump"))?.status).toBe("pending");
    expect((await erp.data.projects.get("northwind", "p-riverside"))?.spent).toBe(1_830_000);

    // The same approval again, now committed. Each stream is relayed in commit order, so once its
    // events arrive, anything the rolled-back attempt had published would already be in the log.
    const approved = await call(erp.url, alice.token, "POST", "/api/expenses/e-pump/approve", {});
    expect(approved.status).toBe(200);
    await laptop.log.waitFor("inbox:message", (message) => message.event === "notification:new" && message.data.body.includes("Concrete pump"));
    await laptop.log.waitFor("project:updated", (project) => project.id === "p-riverside");
    await outboxDrained(erp);
    expect(expenseEvents(laptop, "e-pump").map((message) => message.event)).toEqual(["expense:approved"]);
    expect(laptop.log.of("project:updated").map((project) => project.spent)).toEqual([1_830_000 + 1_850]);
    expect(laptop.log.of("inbox:message").filter((message) => message.event === "notification:new")).toHaveLength(1);

    // The phone connects only now: the approval and its notification wait in its inbox, once each.
    const later = await open(ben, "ben-phone");
    await later.log.waitFor("inbox:message", (message) => message.event === "notification:new");
    expect(await request(later.socket, "presence:list", {})).toMatchObject({ ok: true });
    expect(later.log.of("inbox:message").map((message) => message.event)).toEqual(["expense:approved", "notification:new"]);
    expect(expenseEvents(later, "e-pump")[0].data).toEqual(approved.body);
  });

  test("a submission that rolls back leaves no expense and tells no manager; a committed one tells each manager once", async () => {
    const managerLaptop = await open(alice, "alice-laptop");
    failIn = "expenses.create";
    const failed = await call(erp.url, ben.token, "POST", "/api/expenses", { projectId: "p-elm", description: "Scaffold hire (rolled back)", amount: 900 });
    expect(failed.status).toBe(500);
    expect((await erp.data.expenses.list("northwind")).some((expense) => expense.description.includes("rolled back"))).toBe(false);

    const created = await call(erp.url, ben.token, "POST", "/api/expenses", { projectId: "p-elm", description: "Scaffold hire", amount: 900 });
    expect(created.status).toBe(201);
    await managerLaptop.log.waitFor("inbox:message", (message) => message.data.body?.includes("Scaffold hire"));
    await outboxDrained(erp);
    const bodies = managerLaptop.log.of("inbox:message").map((message) => String(message.data.body));
    expect(bodies.filter((body) => body.includes("Scaffold hire"))).toEqual([expect.stringContaining("Scaffold hire, $900")]);
  });

  test("every announcing write (projects, budgets, tasks, invoices, stock) reaches the right devices once, and Globex's nobody", async () => {
    const staff = await open(alice, "alice-desk");
    await subscribe(staff.socket, "company:projects", "company:inventory", "company:invoices", "project:p-harbor", "project:p-riverside");
    const benDevice = await open(ben, "ben-tablet");
    const globex = await open(gus, "gus-laptop");
    await subscribe(globex.socket, "company:projects", "company:inventory", "company:invoices");

    const created = await call(erp.url, alice.token, "POST", "/api/projects", { name: "Depot Yard", budget: 50_000 });
    expect(created.status).toBe(201);
    expect((await call(erp.url, alice.token, "PATCH", "/api/projects/p-harbor", { budget: 7_000_000 })).status).toBe(200);
    expect((await call(erp.url, alice.token, "POST", "/api/invoices/i-atlas/pay", {})).status).toBe(200);
    const task = await call(erp.url, alice.token, "POST", "/api/tasks", { projectId: "p-harbor", title: "Check bearings", assigneeId: "u-ben" });
    expect(task.status).toBe(201);
    const item = await call(erp.url, alice.token, "POST", "/api/inventory", { sku: "BOLT-M20", name: "Bolts M20", unit: "box", quantity: 12, reorderLevel: 5 });
    expect(item.status).toBe(201);
    expect((await call(erp.url, alice.token, "POST", `/api/inventory/${item.body.id}/adjust`, { delta: -8, reason: "site draw" })).status).toBe(200);
    expect((await call(erp.url, alice.token, "DELETE", `/api/projects/${created.body.id}`)).status).toBe(204);

    await staff.log.waitFor("reorder:triggered", (data) => data.item.sku === "BOLT-M20");
    await benDevice.log.waitFor("inbox:message", (message) => message.event === "task:assigned");
    await outboxDrained(erp);
    const named = (event: string) => staff.log.of(event);
    expect(named("project:created").map((project) => project.name)).toEqual(["Depot Yard"]);
    // Streams are relayed side by side, so across two topics the order is not fixed.
    expect(named("project:updated").map((project) => `${project.id} ${project.budget}`).sort()).toEqual(["p-harbor 7000000", "p-riverside 4200000"]);
    expect(named("invoice:paid").map((invoice) => invoice.id)).toEqual(["i-atlas"]);
    expect(named("payment:processed")).toHaveLength(1);
    expect(named("item:added").map((added) => added.sku)).toEqual(["BOLT-M20"]);
    expect(named("stock:updated").map((update) => update.item.quantity)).toEqual([4]);
    expect(named("reorder:triggered").map((alert) => alert.suggestedQuantity)).toEqual([6]);
    expect(staff.log.of("inbox:message").filter((message) => message.data.title === "Reorder Bolts M20")).toHaveLength(1);
    // A new device also gets what waited in the inbox before it connected (the earlier tests' messages).
    const aboutTask = benDevice.log.of("inbox:message").filter((message) => message.data.task?.id === task.body.id || message.data.title === "New task for you");
    expect(aboutTask.map((message) => message.event)).toEqual(["task:assigned", "notification:new"]);
    expect(globex.log.events.filter((entry) => !entry.event.startsWith("presence:"))).toEqual([]);
  });
});

describe.each(["sqlite", "postgres"] as const)("a change committed by a server that went away before publishing it, on %s", (backend) => {
  let database: TestDatabase | undefined;
  let sqliteDir: string | undefined;
  const running: RunningErp[] = [];
  const sockets: Socket[] = [];

  const start = async () => {
    const erp = await startErp(backend === "postgres" ? { databaseUrl: database!.url } : { databasePath: join(sqliteDir!, "erp.sqlite") });
    running.push(erp);
    return erp;
  };

  beforeAll(async () => {
    if (backend === "postgres") database = await createTestDatabase("restart");
    else sqliteDir = mkdtempSync(join(tmpdir(), "erp-restart-"));
  });
  afterAll(async () => {
    for (const socket of sockets) socket.disconnect();
    for (const erp of running) await erp.close();
    await database?.drop();
    if (sqliteDir) rmSync(sqliteDir, { recursive: true, force: true });
  });

  test("is published by the next server on the same database, once: emit-after-commit would have lost it", async () => {
    const first = await start();
    const [alice, ben] = await Promise.all([login(first.url, "alice@northwind.test"), login(first.url, "ben@northwind.test")]);
    const laptop = await openSocket(first.url, ben.token, "ben-laptop");
    sockets.push(laptop.socket);
    // This server's relay stops, as if the process died right after the commit.
    await first.outboxRelay.close();
    const approved = await call(first.url, alice.token, "POST", "/api/expenses/e-pump/approve", {});
    expect(approved.status).toBe(200);
    expect(await first.data.pendingOutboxRows()).toBe(3);
    expect(await request(laptop.socket, "presence:list", {})).toMatchObject({ ok: true });
    expect(laptop.log.of("inbox:message")).toEqual([]);
    laptop.socket.disconnect();
    await first.close();

    const second = await start();
    await outboxDrained(second);
    const phone = await openSocket(second.url, ben.token, "ben-phone");
    sockets.push(phone.socket);
    await phone.log.waitFor("inbox:message", (message) => message.event === "notification:new");
    expect(await request(phone.socket, "presence:list", {})).toMatchObject({ ok: true });
    expect(phone.log.of("inbox:message").map((message) => message.event)).toEqual(["expense:approved", "notification:new"]);
    expect(phone.log.of("inbox:message")[0].data).toEqual(approved.body);
  });
});

describe.each(BACKENDS)("an event the engine would refuse, on %s", (backend) => {
  let erp: RunningErp;

  beforeAll(async () => {
    erp = await startErpOn(backend, { engine: { logger: false, limits: { maxMessageBytes: 400 } } });
  });
  afterAll(() => erp?.close());

  test("fails its write at the outbox insert, after the row was written: the change rolls back and nothing is published", async () => {
    const alice = await login(erp.url, "alice@northwind.test");
    const fields = { name: "N".repeat(120), site: "S".repeat(200), budget: 1 };
    const refused = await call(erp.url, alice.token, "POST", "/api/projects", fields);
    expect(refused).toMatchObject({ status: 413, body: { error: { code: "PAYLOAD_TOO_LARGE" } } });
    expect((await erp.data.projects.list("northwind")).some((project) => project.name === fields.name)).toBe(false);
    expect(await erp.data.pendingOutboxRows()).toBe(0);
    // A project whose event fits is created and announced.
    const created = await call(erp.url, alice.token, "POST", "/api/projects", { name: "Small shed", budget: 1 });
    expect(created.status).toBe(201);
    await outboxDrained(erp);
    expect((await erp.data.projects.list("northwind")).map((project) => project.name)).toContain("Small shed");
  });
});
