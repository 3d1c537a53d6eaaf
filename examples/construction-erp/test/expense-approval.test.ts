import type { Socket } from "socket.io-client";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { catalog } from "../src/catalog.js";
import { call, login, BACKENDS, openSocket, request, startErpOn, subscribe, type LoggedIn, type RunningErp } from "./helpers.js";

describe.each(BACKENDS)("expense approval reaches the submitter durably, on %s", (backend) => {
  let erp: RunningErp;
  let alice: LoggedIn;
  let ben: LoggedIn;
  const sockets: Socket[] = [];

  const open = async (user: LoggedIn, deviceId: string) => {
    const device = await openSocket(erp.url, user.token, deviceId);
    sockets.push(device.socket);
    return device;
  };

  beforeAll(async () => {
    erp = await startErpOn(backend);
    [alice, ben] = await Promise.all([login(erp.url, "alice@northwind.test"), login(erp.url, "ben@northwind.test")]);
  });
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.disconnect();
  });
  afterAll(() => erp?.close());

  test("Ben, offline during the approval, gets expense:approved and its notification when his phone reconnects", async () => {
    // Ben's phone was online once, so the server knows the device; then it goes offline.
    const phone = await open(ben, "ben-phone");
    phone.socket.disconnect();
    await waitUntil(async () => !(await erp.realtime.isOnline("northwind", "u-ben")));

    const { socket: aliceSocket, log: aliceLog } = await open(alice, "alice-laptop");
    await subscribe(aliceSocket, "project:p-riverside");
    const approved = await call(erp.url, alice.token, "POST", "/api/expenses/e-pump/approve", {});
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ id: "e-pump", status: "approved", decidedBy: "u-alice", submittedBy: "u-ben" });
    // The project's subscribers see its spend go up live.
    await aliceLog.waitFor("project:updated", (project) => project.id === "p-riverside" && project.spent === 1_830_000 + 1_850);

    const { socket: back, log: backLog } = await open(ben, "ben-phone");
    const first = await backLog.waitFor("inbox:message", (message) => message.event === "expense:approved");
    const second = await backLog.waitFor("inbox:message", (message) => message.event === "notification:new");
    expect(catalog.server["expense:approved"].parse(first.data)).toEqual(approved.body);
    expect(second.data).toMatchObject({ kind: "expense", title: "Expense approved" });
    expect(second.data.body).toContain("Concrete pump rental");
    // In the order they were sent.
    expect(backLog.of("inbox:message").map((message) => message.event)).toEqual(["expense:approved", "notification:new"]);
    // Alice, who approved, got nothing in her inbox about it.
    expect(aliceLog.of("inbox:message")).toEqual([]);

    // Once acknowledged, the next reconnect replays nothing.
    expect(await request(back, "inbox:ack", { ids: [first.id, second.id] })).toEqual({ ok: true });
    back.disconnect();
    const { socket: again, log: againLog } = await open(ben, "ben-phone");
    // A request's answer comes after any replay the server started on connect.
    expect(await request(again, "presence:list", {})).toMatchObject({ ok: true });
    expect(againLog.of("inbox:message")).toEqual([]);
  });

  test("a rejection reaches the submitter live with its reason", async () => {
    const chloe = await login(erp.url, "chloe@northwind.test");
    const { log: chloeLog } = await open(chloe, "chloe-tablet");
    const rejected = await call(erp.url, alice.token, "POST", "/api/expenses/e-drone/reject", { reason: "Use the spare batteries in the van" });
    expect(rejected.status).toBe(200);
    const decision = await chloeLog.waitFor("inbox:message", (message) => message.event === "expense:rejected");
    expect(decision.data).toMatchObject({ id: "e-drone", status: "rejected", reason: "Use the spare batteries in the van" });
    const notice = await chloeLog.waitFor("inbox:message", (message) => message.event === "notification:new");
    expect(notice.data.body).toContain("Use the spare batteries in the van");
  });

  test("only managers decide, each expense once", async () => {
    const submitted = await call(erp.url, ben.token, "POST", "/api/expenses", { projectId: "p-harbor", description: "Torque wrench", amount: 310 });
    expect(submitted.status).toBe(201);
    const { log: aliceLog } = await open(alice, "alice-laptop");
    // Submitting notifies the managers.
    const notice = await aliceLog.waitFor("inbox:message", (message) => message.event === "notification:new" && message.data.body.includes("Torque wrench"));
    expect(notice.data.title).toBe("Expense waiting for approval");

    const byMember = await call(erp.url, ben.token, "POST", `/api/expenses/${submitted.body.id}/approve`, {});
    expect(byMember.status).toBe(403);
    expect((await call(erp.url, alice.token, "POST", `/api/expenses/${submitted.body.id}/approve`, {})).status).toBe(200);
    const twice = await call(erp.url, alice.token, "POST", `/api/expenses/${submitted.body.id}/reject`, {});
    expect(twice.status).toBe(409);
    expect(twice.body.error.code).toBe("ALREADY_DECIDED");
    const invalid = await call(erp.url, ben.token, "POST", "/api/expenses", { projectId: "p-harbor", description: "", amount: -5 });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.code).toBe("INVALID_PAYLOAD");
  });
});

async function waitUntil(condition: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
