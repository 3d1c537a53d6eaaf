import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createRealtimeEngine, memoryInboxStore, memoryPresenceStore, type RealtimeEngine } from "@truss/core";
import type { ErrorPayload, InboxMessage } from "@truss/protocol";
import { PROMETHEUS_CONTENT_TYPE } from "@truss/core/http";
import { attachRealtime, realtimeHandler } from "@truss/express";
import { adapterScenarios, collect, connectAs, expectHealthRouteFollows, expectNoNewHandles, handleCounts, open, switchableStore, testAuth, waitFor } from "@truss/test-utils";
import express from "express";
import { afterEach, describe, expect, test } from "vitest";

const acmeAlice = { userId: "alice", companyId: "acme" };
const globexEve = { userId: "eve", companyId: "globex" };

interface TestApp {
  server: Server;
  realtime: RealtimeEngine;
  url: string;
  /** The shutdown order the README gives: the engine first (clients told why), then the server. */
  close(): Promise<void>;
}

let running: TestApp | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

/** An ERP-like app: REST routes that change data and tell the right people through `req.realtime`. */
async function startApp(options: Record<string, unknown> = {}, http: Parameters<typeof realtimeHandler>[1] = {}): Promise<TestApp> {
  const app = express();
  const server = createServer(app);
  const realtime = attachRealtime(server, { auth: testAuth(), logger: false, ...options });
  app.use(express.json());
  app.use(realtimeHandler(realtime, http));
  app.patch("/companies/:companyId/projects/:id", (req, res) => {
    const project = { id: req.params.id, name: (req.body as { name: string }).name };
    req.realtime.toCompany(req.params.companyId).emit("project:updated", project);
    res.json(project);
  });
  // As the README writes it: a rejection goes to next(), which Express 4 does not do for an async handler by itself.
  app.post("/companies/:companyId/expenses/:id/approve", async (req, res, next) => {
    try {
      const message = await req.realtime.toUser(req.params.companyId, (req.body as { submittedBy: string }).submittedBy).emit("expense:approved", { id: req.params.id });
      res.status(202).json({ messageId: message.id });
    } catch (error) {
      next(error);
    }
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  running = {
    server,
    realtime,
    url: `http://127.0.0.1:${port}`,
    async close() {
      await realtime.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return running;
}


describe("emitting from route handlers", () => {
  test("a REST change reaches the company's clients and no other company's", async () => {
    const { url } = await startApp();
    await adapterScenarios.restChangeReachesOnlyItsCompany(url);
  });

  test("toUser from a handler reaches the user's device through the inbox", async () => {
    const { url } = await startApp();
    await adapterScenarios.toUserFromRouteReachesTheDevice(url);
  });

  test("a route whose emit rejects answers 500 and the server keeps serving", async () => {
    const inbox = memoryInboxStore();
    let storeDown = false;
    const append = inbox.append.bind(inbox);
    inbox.append = (...args) => (storeDown ? Promise.reject(new Error("inbox unreachable")) : append(...args));
    const { url } = await startApp({ inbox });
    const approve = (body: object) => fetch(`${url}/companies/acme/expenses/e7/approve`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

    // No submittedBy: toUser throws a TypeError inside the async handler.
    expect((await approve({})).status).toBe(500);
    // The store does not answer: emit rejects with STORE_UNAVAILABLE.
    storeDown = true;
    expect((await approve({ submittedBy: "alice" })).status).toBe(500);
    storeDown = false;
    expect((await approve({ submittedBy: "alice" })).status).toBe(202);
  });

  test("attachRealtime serves a prebuilt engine and returns it", async () => {
    const engine = createRealtimeEngine({ auth: testAuth(), logger: false });
    const app = await startApp({ engine });
    expect(app.realtime).toBe(engine);
    const alice = await connectAs(app.url, acmeAlice);
    expect(await engine.isOnline("acme", "alice")).toBe(true);
    alice.close();
  });
});

describe("health and metrics routes", () => {
  test("health answers 200 while every store is up and 503 once one is down", async () => {
    const { store: presence, takeDown } = switchableStore(memoryPresenceStore());
    const { url } = await startApp({ presence });
    const alice = await connectAs(url, acmeAlice);

    await expectHealthRouteFollows(url, "presence", takeDown);
    alice.close();
  });

  test("metrics are served only at the path the user names, and the health path can move", async () => {
    const { url } = await startApp({}, { healthPath: "/internal/health", metricsPath: "/internal/metrics" });
    const alice = await connectAs(url, acmeAlice);

    const metrics = await fetch(`${url}/internal/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get("content-type")).toBe(PROMETHEUS_CONTENT_TYPE);
    expect(await metrics.text()).toContain("truss_connections 1");
    expect((await fetch(`${url}/internal/health`)).status).toBe(200);
    expect((await fetch(`${url}/health/websocket`)).status).toBe(404);
    // Other methods on the path fall through to the app's own routes.
    expect((await fetch(`${url}/internal/health`, { method: "POST" })).status).toBe(404);
    alice.close();
  });

  test("no metrics route unless named, and no health route with healthPath false", async () => {
    const { url } = await startApp({}, { healthPath: false });
    expect((await fetch(`${url}/health/websocket`)).status).toBe(404);
    expect((await fetch(`${url}/metrics`)).status).toBe(404);
  });
});

describe("shutdown", () => {
  test("closing the engine and the server tells clients why, disconnects them and leaves no open handle", async () => {
    const before = handleCounts();
    const app = await startApp();
    const alice = await connectAs(app.url, acmeAlice);
    const errors = collect<ErrorPayload>(alice, "error");
    const reasons = collect<string>(alice, "disconnect");
    expect((await fetch(`${app.url}/health/websocket`)).status).toBe(200);

    await app.close();
    running = undefined;

    await waitFor(() => reasons.length === 1, { message: "the disconnect" });
    expect(errors.map((error) => error.code)).toEqual(["SERVER_SHUTTING_DOWN"]);
    expect(reasons).toEqual(["io server disconnect"]);
    await expectNoNewHandles(before);
  });
});
