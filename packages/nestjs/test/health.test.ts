import "reflect-metadata";
import { memoryInboxStore } from "@truss/core";
import { RealtimeModule } from "@truss/nestjs";
import { connectAs, expectHealthRouteFollows, switchableStore, testAuth } from "@truss/test-utils";
import { afterEach, expect, test } from "vitest";
import { appModule, startNest, type RunningApp } from "./app.js";

let running: RunningApp | undefined;
afterEach(async () => {
  await running?.app.close();
  running = undefined;
});

test("health answers 200 while every store is up and 503 once one is down", async () => {
  const { store: inbox, takeDown } = switchableStore(memoryInboxStore());
  running = await startNest(appModule(RealtimeModule.forRoot({ auth: testAuth(), inbox, logger: false })));
  const { url } = running;
  const alice = await connectAs(url, { userId: "alice", companyId: "acme" });

  await expectHealthRouteFollows(url, "inbox", takeDown);
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
