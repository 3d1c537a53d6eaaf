import "reflect-metadata";
import { memoryInbox } from "@truss/core";
import { RealtimeModule } from "@truss/nestjs";
import { connectAs, testAuth } from "@truss/test-utils";
import { afterEach, expect, test } from "vitest";
import { appModule, startNest, type RunningApp } from "./app.js";

let running: RunningApp | undefined;
afterEach(async () => {
  await running?.app.close();
  running = undefined;
});

test("health answers 200 while every store is up and 503 once one is down", async () => {
  let inboxUp = true;
  const inbox = Object.assign(memoryInbox(), {
    ping: () => (inboxUp ? Promise.resolve() : Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:6379"))),
  });
  running = await startNest(appModule(RealtimeModule.forRoot({ auth: testAuth(), inbox, logger: false })));
  const { url } = running;
  const alice = await connectAs(url, { userId: "alice", companyId: "acme" });

  const healthy = await fetch(`${url}/health/websocket`);
  expect(healthy.status).toBe(200);
  expect(healthy.headers.get("content-type")).toMatch(/^application\/json/);
  expect(healthy.headers.get("cache-control")).toBe("no-store");
  expect(await healthy.json()).toMatchObject({
    status: "ok",
    connections: 1,
    stores: { presence: { state: "up" }, inbox: { state: "up" }, documents: { state: "up" } },
  });

  inboxUp = false;
  const degraded = await fetch(`${url}/health/websocket`);
  expect(degraded.status).toBe(503);
  expect(await degraded.json()).toMatchObject({
    status: "degraded",
    stores: { inbox: { state: "down", error: "connect ECONNREFUSED 127.0.0.1:6379" }, presence: { state: "up" } },
  });
  alice.close();
});

test("the health path can move, and no route is served for false or for metrics unless named", async () => {
  running = await startNest(appModule(RealtimeModule.forRoot({ auth: testAuth(), logger: false, healthPath: "/ops/realtime" })));
  expect((await fetch(`${running.url}/ops/realtime`)).status).toBe(200);
  expect((await fetch(`${running.url}/health/websocket`)).status).toBe(404);
  expect((await fetch(`${running.url}/metrics`)).status).toBe(404);
  await running.app.close();

  running = await startNest(appModule(RealtimeModule.forRoot({ auth: testAuth(), logger: false, healthPath: false })));
  expect((await fetch(`${running.url}/health/websocket`)).status).toBe(404);
});
