import { Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { createEngineMetrics, ENGINE_METRICS } from "../src/kernel/metrics.js";

/**
 * The engine keeps its histograms itself (prom-client's `observe` validates
 * and hashes the labels on every call) and lets prom-client's registry render
 * them: a scrape must read exactly as prom-client's own Histogram would.
 */
const stores = { inbox: { dropped: async () => ({ expired: 0, overCap: 0 }) }, streams: { trimmed: async () => ({ trimmed: 0, expired: 0 }) } };

function section(text: string, name: string): string {
  return text
    .split("\n\n")
    .find((block) => block.includes(`# TYPE ${name} histogram`))!
    .trim();
}

describe("engine histograms", () => {
  it("render as prom-client's Histogram renders the same observations, with and without labels", async () => {
    const metrics = createEngineMetrics(() => 0, stores, {});
    const reference = new Registry();
    const store = ENGINE_METRICS.truss_store_call_duration_seconds;
    const sameStore = new Histogram({ name: "truss_store_call_duration_seconds", help: store.help, labelNames: [...store.labels], buckets: [...store.buckets], registers: [reference] });
    const lag = ENGINE_METRICS.truss_inbox_delivery_lag_seconds;
    const sameLag = new Histogram({ name: "truss_inbox_delivery_lag_seconds", help: lag.help, buckets: [...lag.buckets], registers: [reference] });

    // Before any observation: the unlabelled one renders zeros, the labelled one nothing.
    let [ours, theirs] = [await metrics.render(), await reference.metrics()];
    expect(section(ours, "truss_inbox_delivery_lag_seconds")).toBe(section(theirs, "truss_inbox_delivery_lag_seconds"));
    expect(section(ours, "truss_store_call_duration_seconds")).toBe(section(theirs, "truss_store_call_duration_seconds"));

    const values = [0, 0.0001, 0.003, 0.0049, 0.005, 0.02, 0.7, 1, 3, 99, 1e6];
    for (const [index, value] of values.entries()) {
      const labels = { store: index % 2 ? "inbox" : "documents", operation: index % 3 ? "append" : "get" };
      metrics.observe("truss_store_call_duration_seconds", labels, value);
      sameStore.observe(labels, value);
      metrics.observe("truss_inbox_delivery_lag_seconds", undefined, value);
      sameLag.observe(value);
    }
    [ours, theirs] = [await metrics.render(), await reference.metrics()];
    expect(section(ours, "truss_store_call_duration_seconds")).toBe(section(theirs, "truss_store_call_duration_seconds"));
    expect(section(ours, "truss_inbox_delivery_lag_seconds")).toBe(section(theirs, "truss_inbox_delivery_lag_seconds"));
    expect(section(ours, "truss_store_call_duration_seconds")).toContain('truss_store_call_duration_seconds_count{store="inbox",operation="append"}');

    // JSON and reset, as an application's registry tooling reads them.
    const json = (await metrics.registry.getMetricsAsJSON()).find((metric) => metric.name === "truss_inbox_delivery_lag_seconds")!;
    const referenceJson = (await reference.getMetricsAsJSON()).find((metric) => metric.name === "truss_inbox_delivery_lag_seconds")!;
    // prom-client adds `exemplar: null` to each value; exemplars are off, so nothing else may differ.
    expect(json.values).toEqual(referenceJson.values.map((value) => ({ ...value, exemplar: undefined })));
    metrics.registry.resetMetrics();
    expect(await metrics.render()).toContain("truss_inbox_delivery_lag_seconds_count 0");
    metrics.observe("truss_inbox_delivery_lag_seconds", undefined, 0.2);
    expect(await metrics.render()).toContain("truss_inbox_delivery_lag_seconds_count 1");
  });
});
