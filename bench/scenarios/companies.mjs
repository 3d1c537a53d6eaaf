/**
 * Scenarios 2 and 3, which share their 10,000 connections (100 companies of
 * 100 clients) so a full run connects them once per server:
 *
 * - `memory`: after the connection burst has settled, full GCs, then
 *   the growth of RSS and of the V8 heap over the empty server, per connection.
 * - `fanout`: company broadcasts stepped up in rate (each broadcast reaches
 *   the company's 100 clients) until the server saturates. Per step:
 *   delivered messages per second, latency p50/p99/p99.9 from the time each
 *   message was scheduled, and whether the step was *held* (everything sent
 *   on schedule and delivered, p99 under 50 ms). Then one step at half of
 *   plain Socket.IO's highest held rate for Truss and Socket.IO, where their
 *   p99 latencies are compared. Raw `ws` with pre-encoded frames runs the same
 *   steps as the ceiling.
 */
import { clientsOf, companyIds } from "./layout.mjs";
import { climbFanout, describeStep } from "../lib/fanout.mjs";

function plan(quick) {
  if (quick) {
    return { layout: { companies: 10, perCompany: 20 }, warmup: 50, steps: [200], stepMs: 300 };
  }
  return {
    layout: { companies: 100, perCompany: 100 },
    warmup: 100,
    // Broadcasts per second over all companies; ×100 for messages per second.
    steps: [100, 200, 300, 450, 600, 800, 1000, 1300],
    stepMs: 2000,
  };
}

async function measureServer(ctx, kind, selected, setup, { halfRate = null, from = 0 } = {}) {
  const { layout, clients, companies, warmup, stepMs } = setup;
  const steps = setup.steps.filter((rate) => rate >= from);
  const server = await ctx.server(kind);
  const generator = await ctx.generator();
  const result = { kind };
  const before = await server.call("memory");
  ctx.step(kind, `connecting ${clients.length}`);
  const connect = await generator.call("connect", { group: "all", ports: [server.port], clients, concurrency: 100 });
  if (connect.failed > 0) throw new Error(`${kind}: ${connect.failed} connections failed: ${JSON.stringify(connect.errors)}`);
  await ctx.quiet(generator);
  result.connect = connect;

  if (selected.has("memory") && kind !== "ws") {
    const after = await server.call("memory");
    const per = (field) => Math.round((after[field] - before[field]) / clients.length);
    result.memory = { before, after, rssPerConnection: per("rss"), heapPerConnection: per("heapUsed") };
    ctx.step(kind, `memory: RSS ${result.memory.rssPerConnection} B/conn, heap ${result.memory.heapPerConnection} B/conn`);
  }

  if (selected.has("fanout")) {
    const { result: climbed, measure } = await climbFanout(ctx, server, generator, {
      kind,
      companies,
      perCompany: layout.perCompany,
      warmup,
      steps,
      stepMs,
      saturatedStops: kind === "ws" ? 1 : 2,
    });
    Object.assign(result, climbed);
    const half = halfRate ?? (climbed.highestHeldRate ? climbed.highestHeldRate / 2 : null);
    if (half && kind !== "ws") {
      await ctx.quiet(generator, { quietMs: 200 });
      result.half = await measure(half, `${kind}-half`, stepMs * 1.2);
      ctx.step(kind, `half of Socket.IO's highest held rate: ${describeStep(result.half)}`);
    }
  }
  await ctx.stopAll();
  return result;
}

export default {
  names: ["memory", "fanout"],
  title: "100 companies of 100 clients: idle memory, company fan-out",
  async run(ctx, selected) {
    const { layout, ...rest } = plan(ctx.quick);
    const setup = { layout, clients: clientsOf(layout), companies: companyIds(layout.companies), ...rest };
    const baseline = await measureServer(ctx, "socketio", selected, setup);
    const truss = await measureServer(ctx, "truss", selected, setup, { halfRate: baseline.half?.rate ?? null });
    // The ceiling starts where the baseline stopped holding: below that it holds too, and the run is long enough.
    const from = baseline.steps?.filter((step) => step.held).at(-1)?.rate ?? 0;
    const ceiling = selected.has("fanout") ? await measureServer(ctx, "ws", selected, setup, { from }) : null;

    const rows = [];
    if (selected.has("memory")) {
      rows.push(
        { scenario: "memory", metric: `RSS per idle connection (${setup.clients.length})`, unit: "B", better: "lower", truss: truss.memory.rssPerConnection, baseline: baseline.memory.rssPerConnection, target: { max: 1.05 } },
        { scenario: "memory", metric: "heap per idle connection", unit: "B", better: "lower", truss: truss.memory.heapPerConnection, baseline: baseline.memory.heapPerConnection },
      );
    }
    if (selected.has("fanout")) {
      const halfOffered = baseline.half?.offered;
      rows.push(
        { scenario: "fanout", metric: "peak delivered", unit: "msg/s", better: "higher", truss: truss.peakDelivered, baseline: baseline.peakDelivered, ceiling: ceiling.peakDelivered, target: { min: 0.95 } },
        { scenario: "fanout", metric: "server CPU per delivered message", unit: "µs", better: "lower", truss: truss.cpuPerMessage, baseline: baseline.cpuPerMessage, ceiling: ceiling.cpuPerMessage },
        { scenario: "fanout", metric: "highest rate held (p99 < 50 ms)", unit: "msg/s", better: "higher", truss: truss.highestHeld, baseline: baseline.highestHeld, ceiling: ceiling.highestHeld },
        { scenario: "fanout", metric: `p50 at ${halfOffered ?? "?"} msg/s (half SIO's held)`, unit: "ms", better: "lower", truss: truss.half?.latency.p50 ?? null, baseline: baseline.half?.latency.p50 ?? null },
        { scenario: "fanout", metric: `p99 at ${halfOffered ?? "?"} msg/s`, unit: "ms", better: "lower", truss: truss.half?.latency.p99 ?? null, baseline: baseline.half?.latency.p99 ?? null, target: { max: 1.2 } },
        { scenario: "fanout", metric: `p99.9 at ${halfOffered ?? "?"} msg/s`, unit: "ms", better: "lower", truss: truss.half?.latency.p999 ?? null, baseline: baseline.half?.latency.p999 ?? null },
      );
    }
    return { rows, details: { layout, truss, baseline, ceiling } };
  },
};
