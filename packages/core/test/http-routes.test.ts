import { createServer } from "node:http";
import { createRealtimeEngine, type HealthReport } from "@truss/core";
import { DEFAULT_HEALTH_PATH, engineFrom, mountRealtime, PROMETHEUS_CONTENT_TYPE, realtimeRoutes } from "@truss/core/http";
import { testAuth } from "@truss/test-utils";
import { describe, expect, test } from "vitest";

const report = (status: HealthReport["status"]): HealthReport => ({
  status,
  nodeId: "node-1",
  connections: 2,
  uptimeMs: 10,
  stores: { presence: { state: "up" }, inbox: { state: status === "degraded" ? "down" : "up" }, documents: { state: "up" }, streams: { state: "up" }, revocations: { state: "up" } },
});
const engineReporting = (status: HealthReport["status"]) => ({
  health: async () => report(status),
  metrics: async () => "truss_connections 2\n",
});

describe("realtimeRoutes", () => {
  test("serves health at the default path and no metrics unless named", () => {
    expect(realtimeRoutes().map(({ name, path }) => ({ name, path }))).toEqual([{ name: "health", path: DEFAULT_HEALTH_PATH }]);
    expect(realtimeRoutes({ healthPath: false })).toEqual([]);
    expect(realtimeRoutes({ metricsPath: "/metrics" }).map((route) => route.path)).toEqual([DEFAULT_HEALTH_PATH, "/metrics"]);
  });

  test("health answers 200 when ok and 503 when degraded or closing, as uncached JSON", async () => {
    const [health] = realtimeRoutes();
    const ok = await health!.reply(engineReporting("ok"));
    expect(ok).toEqual({
      statusCode: 200,
      headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
      body: JSON.stringify(report("ok")),
    });
    expect((await health!.reply(engineReporting("degraded"))).statusCode).toBe(503);
    expect((await health!.reply(engineReporting("closing"))).statusCode).toBe(503);
  });

  test("metrics answer in the Prometheus text format", async () => {
    const metrics = realtimeRoutes({ healthPath: false, metricsPath: "/metrics" })[0]!;
    expect(await metrics.reply(engineReporting("ok"))).toEqual({
      statusCode: 200,
      headers: { "content-type": PROMETHEUS_CONTENT_TYPE, "cache-control": "no-store" },
      body: "truss_connections 2\n",
    });
  });

  test("refuses paths that a router would not match, naming the option", () => {
    expect(() => realtimeRoutes({ healthPath: "health" })).toThrow(/healthPath must be a path starting with "\/"/);
    expect(() => realtimeRoutes({ metricsPath: "" })).toThrow(/metricsPath must be a path/);
    expect(() => realtimeRoutes({ healthPath: "/ops", metricsPath: "/ops" })).toThrow(/both "\/ops"/);
  });
});

describe("engineFrom", () => {
  test("returns a given engine as it is", () => {
    const engine = createRealtimeEngine({ auth: testAuth(), logger: false });
    expect(engineFrom({ engine, healthPath: "/ops" })).toBe(engine);
  });

  test("builds an engine from options, ignoring the adapter's route options", async () => {
    const engine = engineFrom({ auth: testAuth(), logger: false, healthPath: "/ops", metricsPath: "/metrics" });
    expect((await engine.health()).status).toBe("ok");
    await engine.close();
  });
});

describe("mountRealtime", () => {
  test("attaches once, leaves an engine that already serves a server alone, and closes it", async () => {
    const first = createServer();
    const second = createServer();
    const mount = mountRealtime({ auth: testAuth(), logger: false, metricsPath: "/metrics" });
    expect(mount.routes.map((route) => route.name)).toEqual(["health", "metrics"]);
    const io = mount.attach(first).io;
    expect(io).toBeDefined();
    expect(mount.attach(second).io).toBe(io);
    const given = mountRealtime({ engine: mount.engine });
    expect(given.attach(second).io).toBe(io);
    await mount.close();
    expect((await mount.engine.health()).status).toBe("closing");
    first.close();
    second.close();
  });
});
