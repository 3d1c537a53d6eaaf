import { createRealtimeEngine, type AuthorizationRequest, type AuthorizePolicy, type Principal } from "@truss/core";
import { collect, connectAs, connectError, createClient, request, signToken, signTokenAfter, sleep, startTestServer, testAuth, waitFor, type TestClaims, type TestServer } from "@truss/test-utils";
import type { Socket as ClientSocket } from "socket.io-client";
import { afterEach, describe, expect, test } from "vitest";

let server: TestServer;
const sockets: ClientSocket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await server?.close();
});

const connect = async (claims: TestClaims) => {
  const socket = await connectAs(server.url, claims);
  sockets.push(socket);
  return socket;
};

/** A policy that records every request and answers with `decide`. */
function recording(decide: (principal: Principal, request: AuthorizationRequest) => ReturnType<AuthorizePolicy>) {
  const asked: AuthorizationRequest[] = [];
  const authorize: AuthorizePolicy = (principal, request) => {
    asked.push(request);
    return decide(principal, request);
  };
  return { asked, authorize };
}

const alice = { userId: "alice", companyId: "acme" };
const report = { type: "site-report", id: "r1" };

describe("without a policy", () => {
  test("topic subscriptions are refused, documents stay tenant-wide and their commits reach the whole company", async () => {
    server = await startTestServer();
    const a = await connect(alice);
    const b = await connect({ userId: "bob", companyId: "acme" });
    const refused = await request(a, "topic:subscribe", { topic: "project:p1" });
    expect(refused).toMatchObject({ ok: false, error: { code: "FORBIDDEN" } });
    expect(refused.error.message).toMatch(/no authorize policy/);

    const heard = collect(b, "document:updated");
    const created = await request(a, "document:update", { ...report, baseVersion: 0, changes: { notes: "poured" } });
    expect(created).toMatchObject({ ok: true, status: "applied" });
    expect(await request(a, "document:rollback", { ...report, toVersion: 1 })).toMatchObject({ ok: true });
    // Bob never watched the report: without a policy the company hears every commit, as before policies existed.
    await waitFor(() => heard.length === 2);
  });
});

describe("the authorize policy", () => {
  // `attempt` names another topic or document the second time: a subscription already held is not asked about again.
  // `refusedAs`: the action whose refusal answers (a rollback is asked as a read first).
  const kinds: Array<{ action: string; refusedAs?: string; send: (socket: ClientSocket, attempt: number) => Promise<any> }> = [
    { action: "topic:subscribe", send: (s, attempt) => request(s, "topic:subscribe", { topic: `project:p${attempt}` }) },
    { action: "document:read", send: (s) => request(s, "document:get", report) },
    { action: "document:read", send: (s) => request(s, "document:history", report) },
    { action: "document:read", send: (s, attempt) => request(s, "document:watch", { ...report, id: `r${attempt}` }) },
    { action: "document:write", refusedAs: "document:read", send: (s) => request(s, "document:update", { ...report, baseVersion: 1, changes: { notes: "x" } }) },
    { action: "document:rollback", refusedAs: "document:read", send: (s) => request(s, "document:rollback", { ...report, toVersion: 1 }) },
    { action: "event", send: (s) => request(s, "crew:checkin", { crew: 4 }) },
  ];
  const policies: Array<[string, (allow: boolean) => AuthorizePolicy]> = [
    ["sync", (allow) => () => allow],
    ["async", (allow) => async () => {
      await sleep(5);
      return allow;
    }],
  ];

  for (const [style, policy] of policies) {
    for (const { action, refusedAs = action, send } of kinds) {
      test(`${style} policy: ${action} allowed when it answers true, FORBIDDEN and untouched when false`, async () => {
        let allow = true;
        let handled = 0;
        const inner = { allow: policy(true), deny: policy(false) };
        server = await startTestServer({ authorize: (principal, request) => (allow ? inner.allow : inner.deny)(principal, request) });
        server.engine.handle("crew:checkin", () => ({ handled: ++handled }));
        await server.engine.documents.update("acme", report.type, report.id, { baseVersion: 0, changes: { notes: "v1" } });
        const socket = await connect(alice);

        const allowed = await send(socket, 1);
        expect(allowed.ok).toBe(true);
        const before = await server.engine.documents.get("acme", report.type, report.id);
        const handledBefore = handled;

        allow = false;
        const refused = await send(socket, 2);
        expect(refused).toMatchObject({ ok: false, error: { code: "FORBIDDEN" } });
        // Nothing was written, rolled back or handled by the refused call.
        expect(await server.engine.documents.get("acme", report.type, report.id)).toEqual(before);
        expect(handled).toBe(handledBefore);
        expect(await server.engine.metrics()).toMatch(new RegExp(`truss_authorization_refusals_total\\{action="${refusedAs}"\\} 1`));
      });
    }
  }

  test("the policy gets the principal and the request, with the company never taken from the client", async () => {
    const { asked, authorize } = recording(() => true);
    let seen: Principal | undefined;
    server = await startTestServer({
      authorize: (principal, request) => {
        seen = principal;
        return authorize(principal, request);
      },
      topics: { patterns: ["project:{projectId}", "site:{siteId}/crew:{crewId}"] },
    });
    const socket = await connect({ ...alice, roles: ["manager"] });
    await request(socket, "topic:subscribe", { topic: "site:tower-b/crew:4" });
    await request(socket, "document:get", { ...report, companyId: "globex" });
    expect(asked).toEqual([
      { action: "topic:subscribe", topic: "site:tower-b/crew:4", pattern: "site:{siteId}/crew:{crewId}", params: { siteId: "tower-b", crewId: "4" } },
      { action: "document:read", type: "site-report", id: "r1" },
    ]);
    expect(seen).toMatchObject({ userId: "alice", companyId: "acme", roles: ["manager"] });
  });

  test("a policy that answers anything but true refuses with FORBIDDEN; one that throws, rejects or times out could not decide, and refuses with INTERNAL_ERROR", async () => {
    const answers: Record<string, () => unknown> = {
      throws: () => {
        throw new Error("database down");
      },
      rejects: () => Promise.reject(new Error("database down")),
      hangs: () => new Promise(() => {}),
      truthy: () => "yes",
      object: () => ({ allow: true }),
      undefined: () => undefined,
    };
    server = await startTestServer({
      authorize: (_principal, request) => answers[(request as { topic: string }).topic.slice("t:".length)]!() as never,
      limits: { authorizeTimeoutMs: 200 },
    });
    const socket = await connect(alice);
    const undecided = new Set(["throws", "rejects", "hangs"]);
    for (const name of Object.keys(answers)) {
      const answer = await request(socket, "topic:subscribe", { topic: `t:${name}` });
      expect(answer, name).toMatchObject({ ok: false, error: { code: undecided.has(name) ? "INTERNAL_ERROR" : "FORBIDDEN" } });
    }
    // Undecided is still refused: no topic was joined.
    expect([...server.engine.io!.of("/").adapter.rooms.keys()].filter((room) => room.startsWith("topic"))).toEqual([]);
    // The socket is still served after every kind of failure.
    expect(await request(socket, "presence:list", {})).toMatchObject({ ok: true });
  });

  test("a refusal object carries its message, and NOT_FOUND hides that the document exists", async () => {
    server = await startTestServer({
      authorize: (_principal, request) => {
        if (request.action === "document:read") return request.id === report.id ? { code: "NOT_FOUND", message: "No such report." } : true;
        return request.action === "document:rollback" ? { message: "Only managers may roll back." } : true;
      },
    });
    const socket = await connect(alice);
    expect(await request(socket, "document:get", report)).toEqual({ ok: false, error: { code: "NOT_FOUND", message: "No such report." } });
    // A rollback is refused as the read is, so it does not tell that the document exists either.
    expect(await request(socket, "document:rollback", { ...report, toVersion: 1 })).toEqual({ ok: false, error: { code: "NOT_FOUND", message: "No such report." } });
    expect(await request(socket, "document:rollback", { ...report, id: "r2", toVersion: 1 })).toEqual({
      ok: false,
      error: { code: "FORBIDDEN", message: "Only managers may roll back." },
    });
  });

  test("crafted topic names are refused with INVALID_PAYLOAD before the policy runs", async () => {
    const { asked, authorize } = recording(() => true);
    server = await startTestServer({ authorize, topics: { patterns: ["project:{projectId}", { pattern: "crew:{crewId}", params: { crewId: /^\d+$/ } }] } });
    const socket = await connect(alice);
    const crafted: unknown[] = [
      "project:a:b",
      "project:a/b",
      "project:",
      "project",
      ":p1",
      "project::p1",
      "project:p1 ",
      " project:p1",
      "project:p\u00fc",
      "project:p1\u200b",
      "project:\ud800",
      "project:\u0000",
      "__proto__",
      "project:__proto__",
      "constructor",
      "project:_x",
      "crew:abc",
      "crew:4x",
      `project:${"a".repeat(10_240)}`,
      "x".repeat(10_240),
      "",
      42,
      null,
      { toString: "project:p1" },
      ["project:p1"],
    ];
    for (const topic of crafted) {
      const answer = await request(socket, "topic:subscribe", { topic });
      expect(answer, JSON.stringify(topic)?.slice(0, 40)).toMatchObject({ ok: false, error: { code: "INVALID_PAYLOAD" } });
    }
    expect(await request(socket, "topic:subscribe", null)).toMatchObject({ ok: false, error: { code: "INVALID_PAYLOAD" } });
    expect(asked).toEqual([]);
    // Well-formed topics of the declared shapes do reach the policy.
    expect(await request(socket, "topic:subscribe", { topic: "crew:4" })).toEqual({ ok: true, topic: "crew:4", start: { stream: "topic:crew:4", epoch: expect.any(String), top: 0 } });
    expect(await request(socket, "topic:subscribe", { topic: "project:p-1.b@x" })).toMatchObject({ ok: true, topic: "project:p-1.b@x" });
    expect(asked).toHaveLength(2);
  });

  test("malformed patterns fail at start-up with the pattern's name", () => {
    for (const pattern of ["project:{projectId", "project:{a}:{a}", "project:{}", " project:{id}", "project::{id}"]) {
      expect(() => createRealtimeEngine({ auth: testAuth(), authorize: () => true, topics: { patterns: [pattern] } }), pattern).toThrow(TypeError);
    }
  });
});

describe("topics", () => {
  test("toTopic reaches only that company's subscribers: 0 cross deliveries over 1,000 sends with the same topic name", async () => {
    server = await startTestServer({ authorize: () => true, topics: { patterns: ["project:{projectId}"] } });
    const acme = await connect(alice);
    const globex = await connect({ userId: "alice", companyId: "globex" });
    const bystander = await connect({ userId: "bob", companyId: "acme" });
    for (const socket of [acme, globex]) expect(await request(socket, "topic:subscribe", { topic: "project:p1" })).toMatchObject({ ok: true, topic: "project:p1" });
    const heard = { acme: collect<{ n: number; company: string }>(acme, "project:updated"), globex: collect<{ n: number; company: string }>(globex, "project:updated") };
    const bystanderHeard = collect(bystander, "project:updated");
    for (let n = 0; n < 1000; n++) {
      const company = n % 2 === 0 ? "acme" : "globex";
      server.engine.toTopic(company, "project:p1").emit("project:updated", { n, company });
    }
    await waitFor(() => heard.acme.length + heard.globex.length === 1000);
    await sleep(50);
    expect(heard.acme).toHaveLength(500);
    expect(heard.globex).toHaveLength(500);
    expect(heard.acme.every((message) => message.company === "acme")).toBe(true);
    expect(heard.globex.every((message) => message.company === "globex")).toBe(true);
    expect(bystanderHeard).toEqual([]);
  });

  test("unsubscribing stops delivery; subscribing twice is one subscription", async () => {
    server = await startTestServer({ authorize: () => true });
    const socket = await connect(alice);
    const heard = collect(socket, "stock:updated");
    await request(socket, "topic:subscribe", { topic: "yard" });
    await request(socket, "topic:subscribe", { topic: "yard" });
    server.engine.toTopic("acme", "yard").emit("stock:updated", { n: 1 });
    await waitFor(() => heard.length === 1);
    expect(await request(socket, "topic:unsubscribe", { topic: "yard" })).toEqual({ ok: true });
    expect(await request(socket, "topic:unsubscribe", { topic: "yard" })).toEqual({ ok: true });
    server.engine.toTopic("acme", "yard").emit("stock:updated", { n: 2 });
    await sleep(50);
    expect(heard).toEqual([{ n: 1 }]);
  });

  test("past limits.maxSubscriptionsPerConnection (topics and watched documents together) answers TOO_MANY_SUBSCRIPTIONS", async () => {
    server = await startTestServer({ authorize: () => true, limits: { maxSubscriptionsPerConnection: 3 } });
    const socket = await connect(alice);
    expect(await request(socket, "topic:subscribe", { topic: "a" })).toMatchObject({ ok: true });
    expect(await request(socket, "topic:subscribe", { topic: "b" })).toMatchObject({ ok: true });
    expect(await request(socket, "document:watch", report)).toEqual({ ok: true, document: null });
    expect(await request(socket, "topic:subscribe", { topic: "c" })).toMatchObject({ ok: false, error: { code: "TOO_MANY_SUBSCRIPTIONS" } });
    expect(await request(socket, "document:watch", { type: "site-report", id: "r2" })).toMatchObject({ ok: false, error: { code: "TOO_MANY_SUBSCRIPTIONS" } });
    // Many subscribes at once cannot pass the cap between the check and the join.
    await request(socket, "topic:unsubscribe", { topic: "b" });
    const burst = await Promise.all(["c", "d", "e", "f"].map((topic) => request(socket, "topic:subscribe", { topic })));
    expect(burst.filter((answer) => answer.ok)).toHaveLength(1);
    expect(burst.filter((answer) => answer.error?.code === "TOO_MANY_SUBSCRIPTIONS")).toHaveLength(3);
    // A topic already held is not a new one.
    expect(await request(socket, "topic:subscribe", { topic: "a" })).toMatchObject({ ok: true });
  });

  test("a socket that leaves while its policy check runs joins no room", async () => {
    let release: ((value: boolean) => void) | undefined;
    server = await startTestServer({ authorize: () => new Promise<boolean>((resolve) => (release = resolve)) });
    const socket = await connect(alice);
    socket.emit("topic:subscribe", { topic: "yard" }, () => {});
    await waitFor(() => release !== undefined);
    socket.close();
    await waitFor(() => server.engine.io!.of("/").sockets.size === 0);
    release!(true);
    await sleep(20);
    expect([...server.engine.io!.of("/").adapter.rooms.keys()].filter((room) => room.startsWith("topic:"))).toEqual([]);
  });
});

describe("documents with a policy", () => {
  test("a socket refused document:read receives none of that document's updates while another socket edits it", async () => {
    const readers = new Set(["alice", "carol"]);
    server = await startTestServer({
      authorize: (principal, request) => (request.action === "document:read" ? readers.has(principal.userId) : true),
    });
    await server.engine.documents.update("acme", report.type, report.id, { baseVersion: 0, changes: { notes: "v1", secret: "budget" } });
    const editor = await connect(alice);
    const reader = await connect({ userId: "carol", companyId: "acme" });
    const outsider = await connect({ userId: "dave", companyId: "acme" });
    const readerHeard = collect<{ version: number }>(reader, "document:updated");
    const outsiderHeard = collect(outsider, "document:updated");
    const outsiderAny: unknown[] = [];
    outsider.onAny((event, payload) => outsiderAny.push([event, payload]));

    expect(await request(reader, "document:watch", report)).toMatchObject({ ok: true, document: { version: 1 } });
    expect(await request(outsider, "document:watch", report)).toMatchObject({ ok: false, error: { code: "FORBIDDEN" } });
    expect(await request(outsider, "document:get", report)).toMatchObject({ ok: false, error: { code: "FORBIDDEN" } });
    expect(await request(outsider, "document:history", report)).toMatchObject({ ok: false, error: { code: "FORBIDDEN" } });

    for (let version = 1; version <= 20; version++) {
      const answer = await request(editor, "document:update", { ...report, baseVersion: version, changes: { notes: `v${version + 1}` } });
      expect(answer.status).toBe("applied");
    }
    await server.engine.documents.update("acme", report.type, report.id, { baseVersion: 21, changes: { notes: "server" } });
    await waitFor(() => readerHeard.length === 21);
    expect(readerHeard.map((update) => update.version)).toEqual(Array.from({ length: 21 }, (_, index) => index + 2));
    await sleep(50);
    expect(outsiderHeard).toEqual([]);
    expect(JSON.stringify(outsiderAny)).not.toContain("budget");

    // Unwatching stops the updates.
    expect(await request(reader, "document:unwatch", report)).toEqual({ ok: true });
    await request(editor, "document:update", { ...report, baseVersion: 22, changes: { notes: "after" } });
    await sleep(50);
    expect(readerHeard).toHaveLength(21);
  });

  test("a user who may write but not read a document gets none of its data from an update: each is refused at the read", async () => {
    const { asked, authorize } = recording((principal, request) => request.action !== "document:read" || principal.userId !== "sub");
    server = await startTestServer({ authorize });
    await server.engine.documents.update("acme", report.type, report.id, { baseVersion: 0, changes: { notes: "v1", margin: 0.31 } });
    await server.engine.documents.update("acme", report.type, report.id, { baseVersion: 1, changes: { notes: "v2" } });
    const subcontractor = await connect({ userId: "sub", companyId: "acme" });
    const heard: unknown[] = [];
    subcontractor.onAny((event, payload) => heard.push([event, payload]));
    asked.length = 0;
    // Each of these used to answer with the document: an empty merge, a stale write's conflict, a base past the latest.
    const attempts = [
      { baseVersion: 0, changes: {} },
      { baseVersion: 1, changes: { notes: "mine" } },
      { baseVersion: 999, changes: { notes: "mine" } },
    ];
    for (const attempt of attempts) {
      const answer = await request(subcontractor, "document:update", { ...report, ...attempt });
      expect(answer).toMatchObject({ ok: false, error: { code: "FORBIDDEN" } });
      expect(JSON.stringify(answer)).not.toMatch(/0\.31|v2|"version"/);
    }
    expect(asked.map((request) => request.action)).toEqual(["document:read", "document:read", "document:read"]);
    expect(await server.engine.documents.get("acme", report.type, report.id)).toMatchObject({ version: 2, data: { notes: "v2", margin: 0.31 } });
    expect(JSON.stringify(heard)).not.toContain("0.31");
  });

  test("members edit but cannot roll back; the writer learns from its ack", async () => {
    server = await startTestServer({
      authorize: (principal, request) => request.action !== "document:rollback" || principal.roles.includes("manager"),
    });
    const member = await connect({ ...alice, roles: ["member"] });
    const manager = await connect({ userId: "mia", companyId: "acme", roles: ["manager"] });
    expect(await request(member, "document:update", { ...report, baseVersion: 0, changes: { notes: "v1" } })).toMatchObject({ status: "applied" });
    expect(await request(member, "document:update", { ...report, baseVersion: 1, changes: { notes: "v2" } })).toMatchObject({ status: "applied" });
    expect(await request(member, "document:rollback", { ...report, toVersion: 1 })).toMatchObject({ ok: false, error: { code: "FORBIDDEN" } });
    expect((await server.engine.documents.get("acme", report.type, report.id)).version).toBe(2);
    expect(await request(manager, "document:rollback", { ...report, toVersion: 1 })).toMatchObject({ ok: true, document: { version: 3, data: { notes: "v1" } } });
  });
});

describe("rollback with the guide's policy: reads for the crew, rollback for managers", () => {
  // The policy docs/security.md used to teach: a rollback case that asks only for the role.
  const crews = new Map([["acme/p-17", new Set(["alice", "mia"])]]);
  const onCrew = (companyId: string, projectId: string, userId: string) => crews.get(`${companyId}/${projectId}`)?.has(userId) ?? false;
  const { asked, authorize } = recording((principal, request) => {
    switch (request.action) {
      case "document:read":
      case "document:write":
        if (request.type !== "site-report") return true;
        return onCrew(principal.companyId, request.id.split("/")[0]!, principal.userId) || { code: "NOT_FOUND", message: `No site report ${request.id}.` };
      case "document:rollback":
        return principal.roles.includes("manager");
      default:
        return true;
    }
  });
  const filed = { type: "site-report", id: "p-17/2024-06-03" };

  test("a manager outside the crew gets NOT_FOUND for a rollback as for a read: no data, no version committed", async () => {
    server = await startTestServer({ authorize });
    const crew = await connect({ ...alice, roles: ["member"] });
    for (let version = 0; version < 3; version++) {
      expect(await request(crew, "document:update", { ...filed, baseVersion: version, changes: { notes: `v${version + 1}`, budget: 1000 + version } })).toMatchObject({ ok: true });
    }
    const outsider = await connect({ userId: "olga", companyId: "acme", roles: ["manager"] });
    const outsiderAny: unknown[] = [];
    outsider.onAny((event, payload) => outsiderAny.push([event, payload]));
    const hidden = { ok: false, error: { code: "NOT_FOUND", message: `No site report ${filed.id}.` } };
    expect(await request(outsider, "document:get", filed)).toEqual(hidden);
    expect(await request(outsider, "document:history", filed)).toEqual(hidden);
    expect(await request(outsider, "document:update", { ...filed, baseVersion: 3, changes: { notes: "x" } })).toEqual(hidden);
    asked.length = 0;
    for (const toVersion of [1, 2, 3]) expect(await request(outsider, "document:rollback", { ...filed, toVersion })).toEqual(hidden);
    // Refused at the read: the rollback itself was never asked about.
    expect(asked.map((request) => request.action)).toEqual(["document:read", "document:read", "document:read"]);
    expect(await server.engine.documents.get("acme", filed.type, filed.id)).toMatchObject({ version: 3, data: { notes: "v3" } });
    expect(JSON.stringify(outsiderAny)).not.toContain("budget");

    // On the crew: a member is refused the rollback itself; a manager rolls back.
    expect(await request(crew, "document:rollback", { ...filed, toVersion: 1 })).toMatchObject({ ok: false, error: { code: "FORBIDDEN" } });
    const manager = await connect({ userId: "mia", companyId: "acme", roles: ["manager"] });
    expect(await request(manager, "document:rollback", { ...filed, toVersion: 1 })).toMatchObject({ ok: true, document: { version: 4, data: { notes: "v1" } } });
  });
});

describe("auth:refresh", () => {
  test("a refreshed token whose roles no longer pass the policy drops the subscription and says which", async () => {
    server = await startTestServer({
      authorize: (principal, request) =>
        request.action === "topic:subscribe" && request.topic === "budget" ? principal.roles.includes("manager") : true,
    });
    const socket = await connect({ ...alice, roles: ["manager"] });
    await request(socket, "topic:subscribe", { topic: "budget" });
    await request(socket, "topic:subscribe", { topic: "yard" });
    await request(socket, "document:watch", report);
    const dropped = collect(socket, "topic:dropped");
    const heard = collect<{ topic: string }>(socket, "stock:updated");

    const downgraded = signToken({ ...alice, roles: ["member"] });
    const answer = await request(socket, "auth:refresh", { token: downgraded });
    expect(answer).toMatchObject({ ok: true, dropped: { topics: ["budget"], documents: [] } });
    expect(dropped).toEqual([{ topic: "budget", error: { code: "FORBIDDEN", message: expect.any(String) } }]);

    server.engine.toTopic("acme", "budget").emit("stock:updated", { topic: "budget" });
    server.engine.toTopic("acme", "yard").emit("stock:updated", { topic: "yard" });
    await waitFor(() => heard.length === 1);
    await sleep(50);
    expect(heard).toEqual([{ topic: "yard" }]);
    expect(await server.engine.metrics()).toMatch(/truss_subscriptions_dropped_total\{kind="topic"\} 1/);
  });

  test("a refresh drops a watched document the new roles may not read", async () => {
    server = await startTestServer({ authorize: (principal) => principal.roles.includes("manager") });
    const socket = await connect({ ...alice, roles: ["manager"] });
    await request(socket, "document:watch", report);
    const dropped = collect(socket, "document:dropped");
    const answer = await request(socket, "auth:refresh", { token: signToken({ ...alice, roles: ["member"] }) });
    expect(answer).toMatchObject({ ok: true, dropped: { topics: [], documents: [report] } });
    expect(dropped).toEqual([{ ...report, error: { code: "FORBIDDEN", message: expect.any(String) } }]);
  });
});

describe("revocation on one node", () => {
  test("disconnectUser disconnects every device of that user only, with a coded reason, and reports the count", async () => {
    server = await startTestServer();
    const phone = await connect({ ...alice, deviceId: "phone" });
    const laptop = await connect({ ...alice, deviceId: "laptop" });
    const namesake = await connect({ userId: "alice", companyId: "globex" });
    const errors = [collect(phone, "error"), collect(laptop, "error")];
    const reasons: string[] = [];
    for (const socket of [phone, laptop]) socket.on("disconnect", (reason) => reasons.push(reason));

    expect(await server.engine.disconnectUser("acme", "alice")).toEqual({ sockets: 2, complete: true });
    await waitFor(() => reasons.length === 2);
    expect(reasons).toEqual(["io server disconnect", "io server disconnect"]);
    for (const received of errors) expect(received).toEqual([{ code: "ACCESS_REVOKED", message: "Your access to this company was revoked." }]);
    expect(namesake.connected).toBe(true);

    expect(await server.engine.disconnectUser("acme", "nobody", { code: "FORBIDDEN", message: "Removed." })).toEqual({ sockets: 0, complete: true });
    await expect(server.engine.disconnectUser("acme", "alice", { code: "RATE_LIMITED" as never })).rejects.toThrow(TypeError);
  });

  test("unsubscribeUser ends one topic on every device of the user and reports how many held it", async () => {
    server = await startTestServer({ authorize: () => true });
    const phone = await connect({ ...alice, deviceId: "phone" });
    const laptop = await connect({ ...alice, deviceId: "laptop" });
    const colleague = await connect({ userId: "bob", companyId: "acme" });
    for (const socket of [phone, laptop, colleague]) await request(socket, "topic:subscribe", { topic: "project:p1" });
    const dropped = collect(phone, "topic:dropped");
    const heard = [collect(phone, "project:updated"), collect(laptop, "project:updated"), collect(colleague, "project:updated")];

    expect(await server.engine.unsubscribeUser("acme", "alice", "project:p1")).toEqual({ sockets: 2, complete: true });
    expect(await server.engine.unsubscribeUser("acme", "alice", "project:p1")).toEqual({ sockets: 0, complete: true });
    server.engine.toTopic("acme", "project:p1").emit("project:updated", { id: "p1" });
    await waitFor(() => heard[2]!.length === 1);
    await sleep(50);
    expect(heard[0]).toEqual([]);
    expect(heard[1]).toEqual([]);
    expect(dropped).toEqual([{ topic: "project:p1", error: { code: "ACCESS_REVOKED", message: expect.any(String) } }]);
    expect(phone.connected).toBe(true);
  });
});

describe("races", () => {
  test("a subscription whose policy check was running during auth:refresh must pass the refreshed roles too", async () => {
    server = await startTestServer({
      authorize: async (principal, request) => {
        await sleep(150);
        return request.action !== "topic:subscribe" || principal.roles.includes("manager");
      },
    });
    const socket = await connect({ ...alice, roles: ["manager"] });
    const heard = collect(socket, "budget:changed");
    const subscribing = request(socket, "topic:subscribe", { topic: "budget" });
    await sleep(20);
    const refreshed = await request(socket, "auth:refresh", { token: signToken({ ...alice, roles: ["member"] }) });
    expect(refreshed).toMatchObject({ ok: true, dropped: { topics: [] } });
    expect(await subscribing).toMatchObject({ ok: false, error: { code: "FORBIDDEN" } });
    await server.engine.toTopic("acme", "budget").emit("budget:changed", { total: 1 });
    await sleep(50);
    expect(heard).toEqual([]);
  });

  test("a device whose handshake was running when disconnectUser came is refused with the revocation's code", async () => {
    let admitting: (() => void) | undefined;
    const inner = testAuth();
    server = await startTestServer({
      auth: {
        authenticate: async (request) => {
          const principal = await inner.authenticate(request);
          if (principal.deviceId === "slow-phone") await new Promise<void>((resolve) => (admitting = resolve));
          return principal;
        },
      },
    });
    const slow = createClient(server.url, { ...alice, deviceId: "slow-phone" });
    sockets.push(slow);
    const refused = new Promise<{ data?: unknown }>((resolve) => slow.once("connect_error", resolve));
    slow.connect();
    await waitFor(() => admitting !== undefined);
    const revokedAt = Date.now();
    expect(await server.engine.disconnectUser("acme", "alice")).toEqual({ sockets: 0, complete: true });
    admitting!();
    expect((await refused).data).toEqual({ code: "ACCESS_REVOKED", message: "Your access to this company was revoked." });
    // A token issued after the revocation is the authenticator's to judge: this one lets alice back in.
    const socket = await connectAs(server.url, { ...alice, deviceId: "laptop" }, { token: await signTokenAfter(revokedAt, alice) });
    sockets.push(socket);
    expect(socket.connected).toBe(true);
  });

  test("auth:refresh refuses a principal that has already expired, whatever the authenticator said", async () => {
    const inner = testAuth();
    let expired = false;
    server = await startTestServer({
      auth: {
        authenticate: async (request) => {
          const principal = await inner.authenticate(request);
          return expired ? { ...principal, expiresAt: Date.now() - 1000 } : principal;
        },
      },
    });
    const socket = await connect(alice);
    expired = true;
    expect(await request(socket, "auth:refresh", { token: signToken(alice) })).toMatchObject({ ok: false, error: { code: "AUTH_TOKEN_EXPIRED" } });
  });

  test("a principal the authenticator changes after answering moves nothing: the engine keeps its own copy", async () => {
    const inner = testAuth();
    const sessions = new Map<string, Principal>();
    server = await startTestServer({
      topics: { patterns: ["project:{projectId}"] },
      authorize: () => true,
      auth: {
        // A careless session cache: the same object for every handshake of a user, changed in place later.
        authenticate: async (request) => {
          const principal = await inner.authenticate(request);
          const cached = sessions.get(principal.userId) ?? principal;
          sessions.set(principal.userId, cached);
          return cached;
        },
      },
    });
    const socket = await connect(alice);
    const heard: unknown[] = [];
    socket.onAny((event, payload) => heard.push([event, payload]));
    const cached = sessions.get("alice")! as unknown as { companyId: string };
    cached.companyId = "globex";
    expect(await request(socket, "topic:subscribe", { topic: "project:p1" })).toMatchObject({ ok: true });
    await server.engine.toTopic("globex", "project:p1").emit("budget:changed", { total: 999 });
    await server.engine.toTopic("acme", "project:p1").emit("budget:changed", { total: 1 });
    await waitFor(() => heard.length === 1);
    await sleep(50);
    expect(heard).toEqual([["budget:changed", { total: 1 }]]);
  });

  test.each([
    ["an ISO date", "2030-01-01T00:00:00Z"],
    ["NaN", Number.NaN],
    ["a date object", new Date(Date.now() + 60_000)],
  ])("an authenticator whose expiresAt is %s is refused INTERNAL_ERROR, never taken as a session without end", async (_name, expiresAt) => {
    const inner = testAuth();
    const logged: string[] = [];
    server = await startTestServer({
      logger: { warn() {}, error: (message: string) => logged.push(message) },
      auth: { authenticate: async (request) => ({ ...(await inner.authenticate(request)), expiresAt: expiresAt as never }) },
    });
    const refused = await connectError(server.url, { auth: { token: signToken(alice) } });
    expect(refused.data).toMatchObject({ code: "INTERNAL_ERROR" });
    expect(logged.join("\n")).toMatch(/authenticator answered a principal the engine cannot read/);
  });

  test("an authenticator that leaves expiresAt out is held to authExpiry.requireExpiry", async () => {
    const inner = testAuth();
    server = await startTestServer({
      authExpiry: { requireExpiry: true },
      auth: {
        authenticate: async (request) => {
          const { expiresAt: _dropped, ...rest } = await inner.authenticate(request);
          return rest as never;
        },
      },
    });
    const refused = await connectError(server.url, { auth: { token: signToken(alice) } });
    expect(refused.data).toMatchObject({ code: "AUTH_MISSING_CLAIMS" });
  });
});
