import "reflect-metadata";
import { HttpAdapterHost } from "@nestjs/core";
import { RealtimeModule, RealtimeService } from "@truss/nestjs";
import { connectAs, testAuth } from "@truss/test-utils";
import { afterEach, expect, test } from "vitest";
import { appModule, nestPlatform, startNest, type RunningApp } from "./app.js";

let running: RunningApp | undefined;
afterEach(async () => {
  await running?.app.close();
  running = undefined;
});

// vitest.config.ts runs this suite on NestJS 11 and 12, each on @nestjs/platform-express and @nestjs/platform-fastify.
test(`the suite's app runs on @nestjs/platform-${nestPlatform}, and Truss serves on its HTTP server`, async () => {
  running = await startNest(appModule(RealtimeModule.forRoot({ auth: testAuth(), logger: false })));
  expect(running.app.getHttpAdapter().getType()).toBe(nestPlatform);
  const alice = await connectAs(running.url, { userId: "alice", companyId: "acme" });
  expect((await fetch(`${running.url}/health/websocket`)).status).toBe(200);
  alice.close();
});

test("the adapter's source imports the same NestJS as these tests", () => {
  // What `@Inject(HttpAdapterHost)` in RealtimeService recorded, from the adapter's own import of @nestjs/core.
  const injected = Reflect.getMetadata("self:paramtypes", RealtimeService) as Array<{ index: number; param: unknown }>;
  expect(injected.find(({ index }) => index === 1)?.param).toBe(HttpAdapterHost);
});
