import "reflect-metadata";
import { Inject, Injectable, Module } from "@nestjs/common";
import { memoryDocumentStore, type Authenticator, type RealtimeEngine } from "@truss/core";
import type { InboxMessage } from "@truss/protocol";
import { PROMETHEUS_CONTENT_TYPE } from "@truss/core/http";
import { REALTIME_ENGINE, RealtimeModule, RealtimeService } from "@truss/nestjs";
import { TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET, adapterScenarios, collect, jsonRequest, connectAs, testAuth, waitFor } from "@truss/test-utils";
import { afterEach, describe, expect, test } from "vitest";
import { appModule, startNest, type RunningApp } from "./app.js";

const acmeAlice = { userId: "alice", companyId: "acme" };
const globexEve = { userId: "eve", companyId: "globex" };

let running: RunningApp | undefined;
afterEach(async () => {
  await running?.app.close();
  running = undefined;
});

async function start(...args: Parameters<typeof startNest>): Promise<RunningApp> {
  running = await startNest(...args);
  return running;
}

const parameters = (contentType: string | null) => contentType?.split(";").map((part) => part.trim()).sort();


describe("forRoot", () => {
  test("a REST change reaches the company's clients and no other company's", async () => {
    const { url } = await start(appModule(RealtimeModule.forRoot({ auth: testAuth(), logger: false })));
    await adapterScenarios.restChangeReachesOnlyItsCompany(url);
  });

  test("toUser from an injected service reaches the user's device through the inbox", async () => {
    const { url } = await start(appModule(RealtimeModule.forRoot({ auth: testAuth(), logger: false })));
    await adapterScenarios.toUserFromRouteReachesTheDevice(url);
  });

  test("Truss serves even when Nest never calls a WebSocket adapter (no gateway, no TrussIoAdapter)", async () => {
    const { app, url } = await start(appModule(RealtimeModule.forRoot({ auth: testAuth(), logger: false })), { trussAdapter: false });
    const alice = await connectAs(url, acmeAlice);
    const realtime = app.get(RealtimeService);
    expect(await realtime.isOnline("acme", "alice")).toBe(true);
    expect((await realtime.presence("acme")).map((user) => user.userId)).toEqual(["alice"]);
    expect(await realtime.presence.in("acme", { topic: "project:p-17" }).list()).toEqual([]);
    expect(app.get<RealtimeEngine>(REALTIME_ENGINE)).toBe(realtime.engine);
    alice.close();
  });

  test("the app's own Authenticator decides who connects", async () => {
    const badges: Authenticator = {
      async authenticate({ token }) {
        if (token !== "badge-42") throw new Error("unknown badge");
        return { userId: "site-lead", companyId: "acme", deviceId: "tablet", roles: ["foreman"], expiresAt: null };
      },
    };
    const { app, url } = await start(appModule(RealtimeModule.forRoot({ auth: badges, logger: false })));
    const foreman = await connectAs(url, acmeAlice, { token: "badge-42" });
    expect(await app.get(RealtimeService).isOnline("acme", "site-lead")).toBe(true);
    await expect(connectAs(url, acmeAlice, { token: "badge-7" })).rejects.toMatchObject({ data: { code: expect.any(String) } });
    foreman.close();
  });
});

describe("forRootAsync", () => {
  const APP_CONFIG = Symbol("APP_CONFIG");
  interface AppConfig {
    jwtSecret: string;
  }

  /** Stands in for @nestjs/config: configuration as a provider of the app's own. */
  @Module({ providers: [{ provide: APP_CONFIG, useValue: { jwtSecret: TEST_SECRET } satisfies AppConfig }], exports: [APP_CONFIG] })
  class AppConfigModule {}

  /** A store factory that needs configuration, as a Redis-backed one would. */
  @Injectable()
  class StoreFactory {
    constructor(@Inject(APP_CONFIG) readonly config: AppConfig) {}
    documents() {
      return memoryDocumentStore();
    }
  }

  @Module({ imports: [AppConfigModule], providers: [StoreFactory], exports: [StoreFactory] })
  class StoresModule {}

  test("builds the engine from injected configuration and serves the configured routes", async () => {
    const realtime = RealtimeModule.forRootAsync({
      imports: [AppConfigModule, StoresModule],
      inject: [APP_CONFIG, StoreFactory],
      useFactory: (config: AppConfig, stores: StoreFactory) => ({
        auth: { secret: config.jwtSecret, algorithms: ["HS256"], issuer: TEST_ISSUER, audience: TEST_AUDIENCE },
        documents: stores.documents(),
        logger: false,
      }),
      metricsPath: "/metrics",
    });
    const { url } = await start(appModule(realtime));
    const alice = await connectAs(url, acmeAlice);
    const aliceSaw = collect(alice, "project:updated");

    await fetch(`${url}/companies/acme/projects/p2`, jsonRequest("PATCH", { name: "Depot" }));
    await waitFor(() => aliceSaw.length === 1, { message: "acme's broadcast" });

    const metrics = await fetch(`${url}/metrics`);
    expect(metrics.status).toBe(200);
    // Express (under Nest) may reorder the parameters; Prometheus reads them in any order.
    expect(parameters(metrics.headers.get("content-type"))).toEqual(parameters(PROMETHEUS_CONTENT_TYPE));
    expect(await metrics.text()).toContain("truss_connections 1");
    expect((await fetch(`${url}/health/websocket`)).status).toBe(200);
    alice.close();
  });

  test("a factory's secret is the one tokens are checked against", async () => {
    const realtime = RealtimeModule.forRootAsync({
      imports: [AppConfigModule],
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({ auth: { secret: `${config.jwtSecret}-rotated`, algorithms: ["HS256"] }, logger: false }),
    });
    const { url } = await start(appModule(realtime));
    await expect(connectAs(url, acmeAlice)).rejects.toMatchObject({ data: { code: "AUTH_INVALID_TOKEN" } });
  });
});
