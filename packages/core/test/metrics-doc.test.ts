import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach, expect, test } from "vitest";
import { createRealtimeEngine, type RealtimeEngine } from "@truss/core";
import { testAuth } from "@truss/test-utils";
import { ENGINE_METRICS, type MetricsRegistry } from "../src/kernel/metrics.js";

const page = readFileSync(fileURLToPath(new URL("../../../docs/operations.md", import.meta.url)), "utf8");

let engine: RealtimeEngine | undefined;
afterEach(async () => {
  await engine?.close();
  engine = undefined;
});

/** Name → "kind: label, label" of every metric, so a mismatch shows which metric and what differs. */
function describeAll(metrics: Iterable<[string, { kind: string; labels: readonly string[] }]>): Record<string, string> {
  return Object.fromEntries([...metrics].map(([name, { kind, labels }]) => [name, `${kind}: ${labels.join(", ")}`]));
}

/** The rows of the metrics table: `| \`name\` | kind | labels | what it counts |`. */
function documented(): Array<[string, { kind: string; labels: string[] }]> {
  return [...page.matchAll(/^\| `(truss_[a-z_]+)` \| ([a-z]+) \|([^|]*)\|/gm)].map(([, name, kind, cell]) => {
    // Label values are listed in parentheses, some nested: drop them to keep the label names.
    let names = cell!;
    while (/\([^()]*\)/.test(names)) names = names.replace(/\([^()]*\)/g, "");
    return [name!, { kind: kind!, labels: [...names.matchAll(/`([a-z_]+)`/g)].map((match) => match[1]!) }];
  });
}

test("docs/operations.md lists every metric the engine defines, with its type and label names", () => {
  const rows = documented();
  expect(new Set(rows.map(([name]) => name)).size, "a metric listed twice").toBe(rows.length);
  expect(describeAll(rows)).toEqual(describeAll(Object.entries(ENGINE_METRICS)));
});

test("the engine registers every metric of the table, the per-company ones only with companyLabel", async () => {
  const types = async (options: Parameters<typeof createRealtimeEngine>[0]["metrics"]) => {
    engine = createRealtimeEngine({ auth: testAuth(), logger: false, metrics: options });
    const text = await engine.metrics();
    await engine.close();
    engine = undefined;
    return Object.fromEntries([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(([, name, kind]) => [name!, kind!]));
  };
  const kinds = Object.entries(ENGINE_METRICS).map(([name, definition]) => [name, definition.kind, "perCompany" in definition] as const);
  expect(await types({ companyLabel: {} })).toEqual(Object.fromEntries(kinds.map(([name, kind]) => [name, kind])));
  expect(await types(undefined)).toEqual(Object.fromEntries(kinds.filter(([, , perCompany]) => !perCompany).map(([name, kind]) => [name, kind])));
});

test("a metric name, kind or label set the table does not define is a type error", () => {
  // Checked by the type-check of this package (tsc reports an unused @ts-expect-error); never called.
  const misuses = (metrics: MetricsRegistry) => {
    // @ts-expect-error a misspelt name
    metrics.inc("truss_conections_total");
    // @ts-expect-error a misspelt label
    metrics.inc("truss_errors_total", { cod: "RATE_LIMITED" });
    // @ts-expect-error a label the metric does not have
    metrics.inc("truss_errors_total", { code: "RATE_LIMITED", event: "x" });
    // @ts-expect-error a labelled counter without its labels
    metrics.inc("truss_errors_total");
    // @ts-expect-error labels on an unlabelled counter
    metrics.inc("truss_connections_total", { code: "RATE_LIMITED" });
    // @ts-expect-error a histogram counted as a counter
    metrics.inc("truss_handshake_duration_seconds", { outcome: "accepted" });
    // @ts-expect-error a gauge counted as a counter
    metrics.inc("truss_connections");
    // @ts-expect-error a counter observed as a histogram
    metrics.observe("truss_errors_total", { code: "RATE_LIMITED" }, 1);
    // @ts-expect-error a histogram without one of its labels
    metrics.observe("truss_command_duration_seconds", { event: "x" }, 1);
  };
  expect(misuses).toBeTypeOf("function");
});
