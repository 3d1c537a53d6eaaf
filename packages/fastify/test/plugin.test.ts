import { createRealtimeEngine, memoryInboxStore } from "@truss/core";
import type { ErrorPayload, InboxMessage } from "@truss/protocol";
import { PROMETHEUS_CONTENT_TYPE } from "@truss/core/http";
import { trussFastify } from "@truss/fastify";
import { adapterScenarios, collect, connectAs, expectHealthRouteFollows, expectNoNewHandles, handleCounts, open, switchableStore, testAuth, waitFor } from "@truss/test-utils";
import Fastify, { type FastifyInstance } from "fastify";
import { afterEach, describe, expect, test } from "vitest";

const acmeAlice = { userId: "alice", companyId: "acme" };
const globexEve = { userId: "eve", companyId: "globex" };

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

/** An ERP-like app: REST routes that change data and tell the right people through `app.realtime`. */
async function startApp(options: Record<string, unknown> = {}): Promise<{ app: FastifyInstance; url: string }> {
  const instance = Fastify();
  await instance.register(trussFastify, { auth: testAuth(), logger: false, ...options });
  instance.patch<{ Params: { companyId: string; id: string }; Body: { name: string } }>("/companies/:companyId/projects/:id", async (request) => {
    const project = { id: request.params.id, name: request.body.name };
    instance.realtime.toCompany(request.params.companyId).emit("project:updated", project);
    return project;
  });
  instance.post<{ Params: { companyId: string; id: string }; Body: { submittedBy: string } }>("/companies/:companyId/expenses/:id/approve", async (request, reply) => {
    const message = await instance.realtime.toUser(request.params.companyId, request.body.submittedBy).emit("expense:approved", { id: request.params.id });
    return reply.code(202).send({ messageId: message.id });
  });
  const address = await instance.listen({ port: 0, host: "127.0.0.1" });
  app = instance;
  return { app: instance, url: address };
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

  test("a prebuilt engine is served and decorated as it is", async () => {
    const engine = createRealtimeEngine({ auth: testAuth(), logger: false });
    const { app: instance, url } = await startApp({ engine });
    expect(instance.realtime).toBe(engine);
    const alice = await connectAs(url, acmeAlice);
    expect(await engine.isOnline("acme", "alice")).toBe(true);
    alice.close();
  });
});

describe("registering twice", () => {
  test("is refused before a second engine is attached: the server keeps one upgrade listener", async () => {
    const instance = Fastify();
    app = instance;
    await instance.register(trussFastify, { auth: testAuth(), logger: false });
    await expect(instance.register(trussFastify, { auth: testAuth(), logger: false })).rejects.toThrow(/already registered/);
    expect(instance.server.listeners("upgrade")).toHaveLength(1);
  });
});

describe("health and metrics routes", () => {
  test("health answers 200 while every store is up and 503 once one is down", async () => {
    const { store: inbox, takeDown } = switchableStore(memoryInboxStore());
    const { url } = await startApp({ inbox });
    const alice = await connectAs(url, acmeAlice);

    await expectHealthRouteFollows(url, "inbox", takeDown);
    alice.close();
  });

  test("metrics are served only at the path the user names, and the health path can move", async () => {
    const { url } = await startApp({ healthPath: "/internal/health", metricsPath: "/internal/metrics" });
    const alice = await connectAs(url, acmeAlice);

    const metrics = await fetch(`${url}/internal/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get("content-type")).toBe(PROMETHEUS_CONTENT_TYPE);
    expect(await metrics.text()).toContain("truss_connections 1");
    expect((await fetch(`${url}/internal/health`)).status).toBe(200);
    expect((await fetch(`${url}/health/websocket`)).status).toBe(404);
    alice.close();
  });

  test("no metrics route unless named, and none of either with healthPath false", async () => {
    const { url } = await startApp({ healthPath: false });
    expect((await fetch(`${url}/health/websocket`)).status).toBe(404);
    expect((await fetch(`${url}/metrics`)).status).toBe(404);
  });
});

describe("shutdown", () => {
  test("app.close() tells clients why, disconnects them and leaves no open handle", async () => {
    const before = handleCounts();
    const { app: instance, url } = await startApp();
    const alice = await connectAs(url, acmeAlice);
    const errors = collect<ErrorPayload>(alice, "error");
    const reasons = collect<string>(alice, "disconnect");
    expect((await fetch(`${url}/health/websocket`)).status).toBe(200);

    await instance.close();
    app = undefined;

    await waitFor(() => reasons.length === 1, { message: "the disconnect" });
    expect(errors.map((error) => error.code)).toEqual(["SERVER_SHUTTING_DOWN"]);
    expect(reasons).toEqual(["io server disconnect"]);
    await expectNoNewHandles(before);
  });
});
