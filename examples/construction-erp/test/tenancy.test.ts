import jwt from "jsonwebtoken";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { TOKEN_AUDIENCE, TOKEN_ISSUER } from "../src/auth.js";
import { call, login, BACKENDS, openSocket, startErpOn, TEST_JWT_SECRET, type LoggedIn, type RunningErp } from "./helpers.js";

describe.each(BACKENDS)("logins and tokens, on %s", (backend) => {
  let erp: RunningErp;
  beforeAll(async () => {
    erp = await startErpOn(backend);
  });
  afterAll(() => erp?.close());

  test("a demo user logs in and gets a token and their profile, never the password hash", async () => {
    const { status, body } = await call(erp.url, null, "POST", "/api/login", { email: "Alice@Northwind.test", password: "truss-demo" });
    expect(status).toBe(200);
    expect(body.user).toEqual({ id: "u-alice", companyId: "northwind", name: "Alice Moreno", email: "alice@northwind.test", role: "manager", title: "Project manager" });
    expect(body.company).toEqual({ id: "northwind", name: "Northwind Construction" });
    expect(jwt.verify(body.token, TEST_JWT_SECRET, { algorithms: ["HS256"], issuer: TOKEN_ISSUER, audience: TOKEN_AUDIENCE })).toMatchObject({
      sub: "u-alice",
      companyId: "northwind",
      roles: ["manager"],
    });
  });

  test("a wrong password and an unknown email get the same 401", async () => {
    const wrong = await call(erp.url, null, "POST", "/api/login", { email: "alice@northwind.test", password: "nope" });
    const unknown = await call(erp.url, null, "POST", "/api/login", { email: "mallory@northwind.test", password: "truss-demo" });
    expect(wrong).toEqual({ status: 401, body: { error: { code: "INVALID_CREDENTIALS", message: "Wrong email or password." } } });
    expect(unknown).toEqual(wrong);
    expect((await call(erp.url, null, "POST", "/api/login", { email: "alice@northwind.test" })).status).toBe(400);
  });

  test("API routes refuse requests without a valid token, and so does the socket", async () => {
    expect((await call(erp.url, null, "GET", "/api/projects")).body.error.code).toBe("AUTH_MISSING_TOKEN");
    const forged = jwt.sign({ sub: "u-alice", companyId: "northwind", roles: ["manager"] }, "not-the-secret", { algorithm: "HS256", issuer: TOKEN_ISSUER, audience: TOKEN_AUDIENCE });
    const refused = await call(erp.url, forged, "GET", "/api/projects");
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe("AUTH_INVALID_TOKEN");
    const expired = jwt.sign({ sub: "u-alice", companyId: "northwind", roles: ["manager"], exp: Math.floor(Date.now() / 1000) - 60 }, TEST_JWT_SECRET, {
      algorithm: "HS256",
      issuer: TOKEN_ISSUER,
      audience: TOKEN_AUDIENCE,
    });
    expect((await call(erp.url, expired, "GET", "/api/projects")).body.error.code).toBe("AUTH_TOKEN_EXPIRED");
    await expect(openSocket(erp.url, forged, "mallory")).rejects.toMatchObject({ data: { code: "AUTH_INVALID_TOKEN" } });
  });
});

describe.each(BACKENDS)("a user can never read or change another company's rows, on %s", (backend) => {
  let erp: RunningErp;
  let alice: LoggedIn;
  let gus: LoggedIn;

  beforeAll(async () => {
    erp = await startErpOn(backend);
    [alice, gus] = await Promise.all([login(erp.url, "alice@northwind.test"), login(erp.url, "gus@globex.test")]);
  });
  afterAll(() => erp?.close());

  test("lists hold only the caller's company", async () => {
    const ids = async (path: string, token: string) => (await call(erp.url, token, "GET", path)).body.map((row: { id: string }) => row.id).sort();
    expect(await ids("/api/projects", alice.token)).toEqual(["p-elm", "p-harbor", "p-riverside"]);
    expect(await ids("/api/projects", gus.token)).toEqual(["p-annex", "p-hangar"]);
    expect(await ids("/api/expenses", alice.token)).toEqual(["e-drone", "e-pump"]);
    expect(await ids("/api/inventory", gus.token)).toEqual(["s-beams", "s-gravel"]);
    expect(await ids("/api/users", gus.token)).toEqual(["u-gus", "u-hana", "u-ines"]);
    expect(await ids("/api/documents", alice.token)).toEqual(["harbor-daily", "riverside-daily"]);
    expect(await ids("/api/invoices", alice.token)).toEqual(["i-atlas"]);
    expect(await ids("/api/tasks", gus.token)).toEqual(["t-steel"]);
  });

  test("another company's rows answer 404 to reads and writes, and stay unchanged", async () => {
    const attempts: Array<[string, string, unknown?]> = [
      ["GET", "/api/projects/p-annex"],
      ["PATCH", "/api/projects/p-annex", { budget: 1 }],
      ["DELETE", "/api/projects/p-annex"],
      ["POST", "/api/expenses/e-rebar/approve", {}],
      ["POST", "/api/expenses/e-rebar/reject", {}],
      ["POST", "/api/expenses", { projectId: "p-annex", description: "Sneaky", amount: 10 }],
      ["POST", "/api/inventory/s-gravel/adjust", { delta: -50 }],
      ["POST", "/api/invoices/i-steel/pay", {}],
      ["POST", "/api/tasks/t-steel/assign", { assigneeId: "u-alice" }],
      ["POST", "/api/tasks", { projectId: "p-annex", title: "Sneaky" }],
      ["GET", "/api/documents/site-report/annex-daily"],
      ["PATCH", "/api/documents/site-report/annex-daily", { baseVersion: 1, changes: { notes: "pwned" } }],
      ["GET", "/api/documents/site-report/annex-daily/history"],
      ["POST", "/api/documents/site-report/annex-daily/rollback", { toVersion: 1 }],
    ];
    for (const [method, path, body] of attempts) {
      const answer = await call(erp.url, alice.token, method, path, body);
      expect({ method, path, status: answer.status, code: answer.body?.error?.code }).toEqual({ method, path, status: 404, code: "NOT_FOUND" });
    }

    expect((await call(erp.url, gus.token, "GET", "/api/projects/p-annex")).body).toMatchObject({ budget: 3_000_000 });
    expect((await call(erp.url, gus.token, "GET", "/api/inventory")).body.find((item: { id: string }) => item.id === "s-gravel").quantity).toBe(80);
    expect((await call(erp.url, gus.token, "GET", "/api/expenses")).body[0]).toMatchObject({ id: "e-rebar", status: "pending" });
    expect((await call(erp.url, gus.token, "GET", "/api/invoices")).body[0]).toMatchObject({ id: "i-steel", status: "open" });
    expect((await call(erp.url, gus.token, "GET", "/api/tasks")).body[0]).toMatchObject({ id: "t-steel", assigneeId: "u-hana" });
    expect((await call(erp.url, gus.token, "GET", "/api/documents/site-report/annex-daily")).body).toMatchObject({ version: 1 });
    expect((await call(erp.url, gus.token, "GET", "/api/projects")).body).toHaveLength(2);
  });

  test("a task cannot be assigned to another company's user", async () => {
    const answer = await call(erp.url, alice.token, "POST", "/api/tasks/t-scaffold/assign", { assigneeId: "u-hana" });
    expect(answer.status).toBe(404);
    expect((await call(erp.url, alice.token, "GET", "/api/tasks")).body.find((task: { id: string }) => task.id === "t-scaffold").assigneeId).toBeNull();
  });

  test("the socket's documents are scoped to the token's company, whatever the client asks", async () => {
    const { socket } = await openSocket(erp.url, alice.token, "alice-laptop");
    try {
      const answer = await socket.timeout(5000).emitWithAck("document:get", { type: "site-report", id: "annex-daily" });
      expect(answer).toMatchObject({ ok: false, error: { code: "NOT_FOUND" } });
    } finally {
      socket.disconnect();
    }
  });
});
