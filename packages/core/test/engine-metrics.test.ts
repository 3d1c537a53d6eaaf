import { afterEach, describe, expect, test } from "vitest";
import { Counter, Registry } from "prom-client";
import { collect, connectAs, createClient, open, request, startTestServer, waitFor, type TestServer } from "@truss/test-utils";
import { createRealtimeEngine } from "@truss/core";
import type { InboxMessage } from "@truss/protocol";
import { realtimeRoutes } from "@truss/core/http";
import { testAuth } from "@truss/test-utils";

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const alice = { userId: "alice", companyId: "acme", deviceId: "laptop" };

/** Every sample line of a text exposition: `name{labels} value`. */
function samples(text: string): Array<{ name: string; labels: string; value: number }> {
  return text
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => {
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (-?[0-9.e+]+|NaN|[+-]Inf)$/.exec(line);
      if (!match) throw new Error(`not a sample line: ${line}`);
      return { name: match[1]!, labels: match[2] ?? "", value: Number(match[3]) };
    });
}

/** The `_count` of a histogram with the given labels (each `name="value"` in its label set, in any order). */
function histogramCount(text: string, name: string, labels = ""): number {
  const wanted = labels === "" ? [] : labels.split(",");
  return samples(text)
    .filter((sample) => sample.name === `${name}_count` && wanted.every((label) => sample.labels.includes(label)))
    .reduce((sum, sample) => sum + sample.value, 0);
}

describe("metrics on prom-client", () => {
  test("engine.metrics() is well-formed exposition text with every existing name, and counters start at 0", async () => {
    server = await startTestServer();
    const text = await server.engine.metrics();
    expect(() => samples(text)).not.toThrow();
    for (const name of [
      "truss_connections",
      "truss_connections_total",
      "truss_auth_failures_total",
      "truss_events_received_total",
      "truss_errors_total",
      "truss_broadcasts_total",
      "truss_inbox_appended_total",
      "truss_inbox_duplicates_total",
      "truss_document_updates_total",
      "truss_document_mutations_total",
      "truss_store_errors_total",
      "truss_slow_consumers_total",
      "truss_stream_resyncs_total",
      "truss_stream_replayed_total",
      "truss_inbox_dropped_total",
      "truss_stream_dropped_total",
      "truss_disconnects_total",
      "truss_command_duration_seconds",
      "truss_store_call_duration_seconds",
      "truss_handshake_duration_seconds",
      "truss_inbox_delivery_lag_seconds",
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(text).toMatch(/^truss_connections_total 0$/m);
    expect(text).toMatch(/^truss_inbox_duplicates_total 0$/m);
    expect(text).toContain('truss_inbox_dropped_total{reason="over_cap"} 0');
    expect(text).toContain("# TYPE truss_command_duration_seconds histogram");
    // No company labels unless asked for.
    expect(text).not.toContain("truss_company_");
    const [route] = realtimeRoutes({ healthPath: false, metricsPath: "/metrics" });
    const reply = await route!.reply(server.engine);
    expect(reply.headers["content-type"]).toBe(Registry.PROMETHEUS_CONTENT_TYPE);
  });

  test("an application registry serves the application's metrics and Truss's in one scrape", async () => {
    const registry = new Registry();
    const orders = new Counter({ name: "app_orders_total", help: "Orders placed.", registers: [registry] });
    orders.inc(3);
    server = await startTestServer({ metrics: { registry } });
    const socket = await connectAs(server.url, alice);
    const text = await registry.metrics();
    expect(text).toMatch(/^app_orders_total 3$/m);
    expect(text).toMatch(/^truss_connections 1$/m);
    expect(text).toMatch(/^truss_connections_total 1$/m);
    // engine.metrics() renders the same registry.
    expect(await server.engine.metrics()).toMatch(/^app_orders_total 3$/m);
    // An OpenMetrics registry's content type reaches the metrics route.
    const openMetrics = new Registry<typeof Registry.OPENMETRICS_CONTENT_TYPE>();
    openMetrics.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    const engine = createRealtimeEngine({ auth: testAuth(), logger: false, metrics: { registry: openMetrics } });
    const [route] = realtimeRoutes({ healthPath: false, metricsPath: "/metrics" });
    expect((await route!.reply(engine)).headers["content-type"]).toBe(Registry.OPENMETRICS_CONTENT_TYPE);
    socket.close();
  });

  test("a second engine in the same registry is refused with a clear error", () => {
    const registry = new Registry();
    createRealtimeEngine({ auth: testAuth(), logger: false, metrics: { registry } });
    expect(() => createRealtimeEngine({ auth: testAuth(), logger: false, metrics: { registry } })).toThrow(/already has "truss_connections"/);
  });

  test("histograms observe handshakes, commands by event, store calls by store and operation, and inbox delivery lag", async () => {
    server = await startTestServer();
    const socket = createClient(server.url, alice);
    const inbox = collect<InboxMessage>(socket, "inbox:message");
    await open(socket);
    await server.engine.toUser("acme", "alice").emit("notification:new", { n: 1 });
    await waitFor(() => inbox.length === 1);
    expect((await request(socket, "inbox:ack", { ids: [inbox[0]!.id] })).ok).toBe(true);
    expect((await request(socket, "document:update", { type: "project", id: "p1", baseVersion: 0, changes: { name: "Tower" } })).ok).toBe(true);
    // Refused before any handler: counted as an error, not timed as a command.
    expect((await request(socket, "no:such-event", {})).ok).toBe(false);

    const text = await server.engine.metrics();
    expect(histogramCount(text, "truss_handshake_duration_seconds", 'outcome="accepted"')).toBe(1);
    expect(histogramCount(text, "truss_command_duration_seconds", 'event="inbox:ack",outcome="ok"')).toBe(1);
    expect(histogramCount(text, "truss_command_duration_seconds", 'event="document:update",outcome="ok"')).toBe(1);
    expect(text).not.toContain('event="no:such-event"');
    expect(histogramCount(text, "truss_store_call_duration_seconds", 'operation="append",store="inbox"')).toBe(1);
    expect(histogramCount(text, "truss_store_call_duration_seconds", 'operation="ack",store="inbox"')).toBe(1);
    expect(histogramCount(text, "truss_store_call_duration_seconds", 'operation="compareAndSet",store="documents"')).toBe(1);
    // Presence's own calls, made in the background, are timed too.
    expect(histogramCount(text, "truss_store_call_duration_seconds", 'operation="connect",store="presence"')).toBe(1);
    expect(histogramCount(text, "truss_store_call_duration_seconds", 'operation="deviceIds",store="presence"')).toBe(1);
    expect(histogramCount(text, "truss_inbox_delivery_lag_seconds")).toBe(1);
    expect(text).toMatch(/^truss_inbox_delivery_lag_seconds_sum [0-9.e-]+$/m);
    socket.close();
  });

  test("presence's background store calls (heartbeats, sweeps, disconnects) are timed like the others", async () => {
    server = await startTestServer({ presenceTiming: { ttlMs: 300 } });
    const socket = await connectAs(server.url, alice);
    const count = async (operation: string) => histogramCount(await server!.engine.metrics(), "truss_store_call_duration_seconds", `operation="${operation}",store="presence"`);
    await waitFor(async () => (await count("heartbeat")) >= 1 && (await count("sweepExpired")) >= 1, { message: "a heartbeat and a sweep timed" });
    socket.close();
    await waitFor(async () => (await count("disconnect")) === 1, { message: "the disconnect timed" });
    expect(await count("connect")).toBe(1);
  });

  test("refused handshakes are timed and counted by code; disconnects are counted by reason", async () => {
    server = await startTestServer();
    await expect(open(createClient(server.url, alice, { token: "not-a-token" }))).rejects.toThrow();
    const socket = await connectAs(server.url, alice);
    socket.close();
    await waitFor(async () => /^truss_disconnects_total\{reason="client_disconnect"\} 1$/m.test(await server!.engine.metrics()));
    const text = await server.engine.metrics();
    expect(histogramCount(text, "truss_handshake_duration_seconds", 'outcome="refused"')).toBe(1);
    expect(text).toContain('truss_auth_failures_total{code="AUTH_INVALID_TOKEN"} 1');
  });

  test("a failing command is timed with outcome error", async () => {
    server = await startTestServer();
    const socket = await connectAs(server.url, alice);
    expect((await request(socket, "document:update", { type: "project", id: "p1", baseVersion: 0 })).ok).toBe(false);
    expect(histogramCount(await server.engine.metrics(), "truss_command_duration_seconds", 'event="document:update",outcome="error"')).toBe(1);
    socket.close();
  });
});

describe("company labels", () => {
  test("are opt-in and capped: companies past the cap are counted as other", async () => {
    server = await startTestServer({ metrics: { companyLabel: { max: 2 } } });
    for (const company of ["acme", "globex", "initech", "umbrella", "acme"]) {
      await server.engine.toCompany(company).emit("project:updated", { company });
    }
    const text = await server.engine.metrics();
    expect(text).toContain('truss_company_broadcasts_total{company="acme",scope="company"} 2');
    expect(text).toContain('truss_company_broadcasts_total{company="globex",scope="company"} 1');
    expect(text).toContain('truss_company_broadcasts_total{company="other",scope="company"} 2');
    expect(text).not.toContain('company="initech"');
    expect(text).not.toContain('company="umbrella"');
    const series = samples(text).filter((sample) => sample.name === "truss_company_broadcasts_total");
    expect(series).toHaveLength(3);
    // The unlabelled totals are unchanged.
    expect(text).toContain('truss_broadcasts_total{scope="company"} 5');
  });

  test("count client events per company within the same cap", async () => {
    server = await startTestServer({ metrics: { companyLabel: { max: 1 } } });
    const a = await connectAs(server.url, alice);
    const b = await connectAs(server.url, { userId: "bob", companyId: "globex", deviceId: "phone" });
    await request(a, "presence:list", {});
    await request(b, "presence:list", {});
    const text = await server.engine.metrics();
    expect(text).toMatch(/^truss_company_events_received_total\{company="acme"\} 1$/m);
    expect(text).toMatch(/^truss_company_events_received_total\{company="other"\} 1$/m);
    a.close();
    b.close();
  });

  test("a cap that is not a positive integer is refused at creation", () => {
    expect(() => createRealtimeEngine({ auth: testAuth(), logger: false, metrics: { companyLabel: { max: 0 } } })).toThrow(TypeError);
  });
});
