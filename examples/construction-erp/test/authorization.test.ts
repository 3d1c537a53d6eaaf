import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { BACKENDS, call, login, openSocket, outboxDrained, request, startErpOn, subscribe, watch, type EventLog, type LoggedIn, type RunningErp } from "./helpers.js";

/** What a door answered, in one vocabulary: `allowed`, or the refusal's code. */
type Outcome = "allowed" | "FORBIDDEN" | "NOT_FOUND";

const REST_OUTCOME: Record<number, Outcome> = { 200: "allowed", 201: "allowed", 403: "FORBIDDEN", 404: "NOT_FOUND" };

/**
 * The REST API and the socket ask one policy (`src/policy.ts`), so the same
 * question gets the same answer at both doors: a subcontractor is kept to
 * their project, a member cannot roll back, a manager can.
 */
describe.each(BACKENDS)("one policy behind both doors, on %s", (backend) => {
  let erp: RunningErp;
  let alice: LoggedIn;
  let ben: LoggedIn;
  let sam: LoggedIn;
  const sockets = new Map<string, Socket>();

  beforeAll(async () => {
    erp = await startErpOn(backend);
    [alice, ben, sam] = (await Promise.all(["alice", "ben", "sam"].map((name) => login(erp.url, `${name}@northwind.test`)))) as [LoggedIn, LoggedIn, LoggedIn];
    for (const [name, user] of [["alice", alice], ["ben", ben], ["sam", sam]] as const) {
      sockets.set(name, (await openSocket(erp.url, user.token, `${name}-laptop`)).socket);
    }
  });
  afterAll(async () => {
    for (const socket of sockets.values()) socket.disconnect();
    await erp?.close();
  });

  async function overRest(user: LoggedIn, method: string, path: string, body?: unknown): Promise<Outcome | number> {
    const { status } = await call(erp.url, user.token, method, path, body);
    return REST_OUTCOME[status] ?? status;
  }

  async function overSocket(name: string, event: string, payload: unknown): Promise<Outcome | string> {
    const ack = await request(sockets.get(name)!, event, payload);
    return ack.ok ? "allowed" : ack.error.code;
  }

  test("Sam, a subcontractor on Riverside Tower, gets the same answer from REST and the socket", async () => {
    const harbor = { type: "site-report", id: "harbor-daily" };
    const riverside = { type: "site-report", id: "riverside-daily" };
    const cases: Array<{ name: string; rest: Parameters<typeof overRest>; socket: [string, unknown]; expected: Outcome }> = [
      { name: "his project", rest: [sam, "GET", "/api/projects/p-riverside"], socket: ["topic:subscribe", { topic: "project:p-riverside" }], expected: "allowed" },
      { name: "another project", rest: [sam, "GET", "/api/projects/p-harbor"], socket: ["topic:subscribe", { topic: "project:p-harbor" }], expected: "NOT_FOUND" },
      { name: "a project that does not exist", rest: [sam, "GET", "/api/projects/p-nowhere"], socket: ["topic:subscribe", { topic: "project:p-nowhere" }], expected: "NOT_FOUND" },
      { name: "his project's site report", rest: [sam, "GET", "/api/documents/site-report/riverside-daily"], socket: ["document:get", riverside], expected: "allowed" },
      { name: "another project's site report", rest: [sam, "GET", "/api/documents/site-report/harbor-daily"], socket: ["document:get", harbor], expected: "NOT_FOUND" },
      { name: "its history", rest: [sam, "GET", "/api/documents/site-report/harbor-daily/history"], socket: ["document:history", harbor], expected: "NOT_FOUND" },
      {
        name: "editing it",
        rest: [sam, "PATCH", "/api/documents/site-report/harbor-daily", { baseVersion: 1, changes: { notes: "x" } }],
        socket: ["document:update", { ...harbor, baseVersion: 1, changes: { notes: "x" } }],
        expected: "NOT_FOUND",
      },
      {
        name: "rolling back his own project's report",
        rest: [sam, "POST", "/api/documents/site-report/riverside-daily/rollback", { toVersion: 1 }],
        socket: ["document:rollback", { ...riverside, toVersion: 1 }],
        expected: "FORBIDDEN",
      },
      { name: "the stock", rest: [sam, "GET", "/api/inventory"], socket: ["topic:subscribe", { topic: "company:inventory" }], expected: "FORBIDDEN" },
      { name: "the invoices", rest: [sam, "GET", "/api/invoices"], socket: ["topic:subscribe", { topic: "company:invoices" }], expected: "FORBIDDEN" },
    ];
    for (const { name, rest, socket, expected } of cases) {
      expect({ name, rest: await overRest(...rest), socket: await overSocket("sam", ...socket) }).toEqual({ name, rest: expected, socket: expected });
    }
    // Watching (the socket's way to hear a document's updates) is a read, decided alike.
    expect(await overSocket("sam", "document:watch", harbor)).toBe("NOT_FOUND");
    expect(await overSocket("sam", "document:watch", riverside)).toBe("allowed");
    // Presence stands on a watch: the report he may not watch has none for him; his own has.
    expect(await overSocket("sam", "presence:join", { scope: harbor, state: { field: "notes" } })).toBe("FORBIDDEN");
    expect(await overSocket("sam", "presence:join", { scope: riverside, state: { field: "notes" } })).toBe("allowed");
    // A topic of no declared shape never reaches the policy.
    expect(await overSocket("sam", "topic:subscribe", { topic: "payroll" })).toBe("INVALID_PAYLOAD");
  });

  test("a member may edit a site report but not roll it back; a manager may do both, at either door", async () => {
    const path = "/api/documents/site-report/riverside-daily";
    const key = { type: "site-report", id: "riverside-daily" };
    expect(await overRest(ben, "PATCH", path, { baseVersion: 1, changes: { weather: "Rain from noon" } })).toBe("allowed");
    expect(await overSocket("ben", "document:update", { ...key, baseVersion: 1, changes: { progress: "Slab poured." } })).toBe("allowed");

    const refusedOverRest = await call(erp.url, ben.token, "POST", `${path}/rollback`, { toVersion: 1 });
    expect(refusedOverRest).toEqual({ status: 403, body: { error: { code: "FORBIDDEN", message: "Only managers may roll back documents." } } });
    const refusedOverSocket = await request(sockets.get("ben")!, "document:rollback", { ...key, toVersion: 1 });
    expect(refusedOverSocket).toEqual({ ok: false, error: { code: "FORBIDDEN", message: "Only managers may roll back documents." } });

    expect(await overRest(alice, "POST", `${path}/rollback`, { toVersion: 1 })).toBe("allowed");
    expect(await overSocket("alice", "document:rollback", { ...key, toVersion: 2 })).toBe("allowed");
    const history = (await call(erp.url, alice.token, "GET", `${path}/history`)).body;
    expect(history.slice(0, 2).map((version: { updatedBy: string }) => version.updatedBy)).toEqual(["u-alice", "u-alice"]);
  });

  test("REST lists hold only what Sam may see, and refuse what he may not do", async () => {
    const ids = async (path: string) => (await call(erp.url, sam.token, "GET", path)).body.map((row: { id: string }) => row.id).sort();
    expect(await ids("/api/projects")).toEqual(["p-riverside"]);
    expect(await ids("/api/documents")).toEqual(["riverside-daily"]);
    expect(await ids("/api/tasks")).toEqual(["t-slab"]);
    // Ben's expense is on Sam's project, but it is Ben's.
    expect(await ids("/api/expenses")).toEqual([]);
    const submitted = await call(erp.url, sam.token, "POST", "/api/expenses", { projectId: "p-riverside", description: "Formwork ties", amount: 640 });
    expect(submitted.status).toBe(201);
    expect(await ids("/api/expenses")).toEqual([submitted.body.id]);
    expect((await call(erp.url, sam.token, "POST", "/api/expenses", { projectId: "p-harbor", description: "Sneaky", amount: 1 })).status).toBe(404);
    expect((await call(erp.url, sam.token, "POST", "/api/projects", { name: "Side job", budget: 1 })).status).toBe(403);
    expect((await call(erp.url, sam.token, "PATCH", "/api/projects/p-riverside", { budget: 1 })).body.error).toEqual({
      code: "FORBIDDEN",
      message: "Only managers and members may edit projects.",
    });
    // A task can go to Sam only on his project.
    expect((await call(erp.url, alice.token, "POST", "/api/tasks/t-scaffold/assign", { assigneeId: "u-sam" })).body.error.code).toBe("NOT_ASSIGNED");
    expect((await call(erp.url, alice.token, "POST", "/api/tasks/t-slab/assign", { assigneeId: "u-sam" })).status).toBe(200);
  });

  test("Sam hears his project's changes and none of another project's", async () => {
    const { socket, log } = await openSocket(erp.url, sam.token, "sam-phone");
    try {
      await subscribe(socket, "project:p-riverside");
      await watch(socket, "site-report", "riverside-daily");
      // Harbor first. Once Riverside's changes arrived, the outbox is empty (everything committed has been
      // written to the sockets) and a request on the socket is answered, a leak would already be logged.
      expect((await call(erp.url, alice.token, "PATCH", "/api/projects/p-harbor", { budget: 2_900_000 })).status).toBe(200);
      const harborReport = (await call(erp.url, alice.token, "GET", "/api/documents/site-report/harbor-daily")).body;
      expect((await call(erp.url, alice.token, "PATCH", "/api/documents/site-report/harbor-daily", { baseVersion: harborReport.version, changes: { notes: "Lane reopened." } })).status).toBe(200);
      expect((await call(erp.url, alice.token, "POST", "/api/projects", { name: "Secret bid", budget: 9_000_000 })).status).toBe(201);
      expect((await call(erp.url, alice.token, "PATCH", "/api/projects/p-riverside", { budget: 4_400_000 })).status).toBe(200);
      const riverside = (await call(erp.url, alice.token, "GET", "/api/documents/site-report/riverside-daily")).body;
      expect((await call(erp.url, alice.token, "PATCH", "/api/documents/site-report/riverside-daily", { baseVersion: riverside.version, changes: { notes: "Crane booked." } })).status).toBe(200);

      expect(await log.waitFor("project:updated")).toMatchObject({ id: "p-riverside", budget: 4_400_000 });
      expect(await log.waitFor("document:updated")).toMatchObject({ id: "riverside-daily", data: { notes: "Crane booked." } });
      await outboxDrained(erp);
      expect(await request(socket, "presence:list", {})).toMatchObject({ ok: true });
      // Presence and his own inbox (the task assigned to him above) aside. The budget goes through the outbox
      // and the report's update straight from the engine, so either may come first.
      const heard = (log as EventLog).events.filter((entry) => !entry.event.startsWith("presence:") && entry.event !== "inbox:message");
      expect(heard.map((entry) => entry.event).sort()).toEqual(["document:updated", "project:updated"]);
      expect(JSON.stringify(heard)).not.toMatch(/p-harbor|harbor-daily|Secret bid/);
    } finally {
      socket.disconnect();
    }
  });
});
