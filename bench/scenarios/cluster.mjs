/**
 * Scenario 6: two nodes on the Redis adapter. 50 companies of 100 clients,
 * every other client on the second node; node A broadcasts to the companies
 * at stepped rates, so half of each broadcast is delivered by A itself and
 * half crosses Redis pub/sub to node B. Truss (Redis stores and
 * `redisAdapter` from @truss/redis) against plain Socket.IO with
 * `@socket.io/redis-adapter`. Both nodes share the server core.
 */
import { clientsOf, companyIds } from "./layout.mjs";
import { awaitDelivery } from "../lib/settle.mjs";

const HELD_P99_MS = 50;

function plan(quick) {
  if (quick) return { layout: { companies: 5, perCompany: 10 }, steps: [100], stepMs: 300 };
  return { layout: { companies: 40, perCompany: 100 }, steps: [100, 200, 300, 400, 550, 700], stepMs: 1500 };
}

const cpuOf = async (nodes) => (await Promise.all(nodes.map((node) => node.call("cpu")))).reduce((sum, micros) => sum + micros, 0);

async function runStep(ctx, [nodeA, nodeB], generator, { companies, perCompany, rate, durationMs, label }) {
  await generator.call("reset");
  const cpuBefore = await cpuOf([nodeA, nodeB]);
  const sent = await ctx.profiled(nodeA, label, () => nodeA.call("broadcast", { companies, rate, durationMs }));
  const expected = sent.sent * perCompany;
  const stats = await awaitDelivery(generator, (current) => current.delivered >= expected);
  const cpuMicros = (await cpuOf([nodeA, nodeB])) - cpuBefore;
  const seconds = Math.max(durationMs, stats.lastAt - sent.startedAt) / 1000;
  const offered = rate * perCompany;
  const deliveredPerSecond = Math.round(stats.delivered / seconds);
  const [local, remote] = stats.latencyByNode;
  return {
    rate,
    offered,
    planned: sent.planned,
    sent: sent.sent,
    expected,
    delivered: stats.delivered,
    deliveredByNode: stats.deliveredByNode,
    deliveredPerSecond,
    cpuMicros,
    local,
    remote,
    held: sent.sent === sent.planned && stats.delivered === expected && Math.max(local.p99 ?? Infinity, remote.p99 ?? Infinity) < HELD_P99_MS,
    saturated: deliveredPerSecond < 0.9 * offered,
  };
}

async function measurePair(ctx, kind, setup) {
  const { layout, clients, companies, steps, stepMs } = setup;
  const { port: redisPort } = await ctx.redis();
  const prefix = ctx.prefix();
  const options = kind === "truss" ? { store: "redis", adapter: true, redisPort, prefix } : { adapter: true, redisPort, prefix };
  const nodeA = await ctx.server(kind, options, { name: `${kind}-A` });
  const nodeB = await ctx.server(kind, options, { name: `${kind}-B` });
  const generator = await ctx.generator();
  ctx.step(kind, `connecting ${clients.length} over two nodes`);
  const connect = await generator.call("connect", { group: "all", ports: [nodeA.port, nodeB.port], clients, concurrency: 100 });
  if (connect.failed > 0) throw new Error(`${kind}: ${connect.failed} connections failed: ${JSON.stringify(connect.errors)}`);
  await ctx.quiet(generator);
  const common = { companies, perCompany: layout.perCompany, durationMs: stepMs };
  await runStep(ctx, [nodeA, nodeB], generator, { ...common, rate: steps[0] / 2, durationMs: Math.min(stepMs, 1000), label: `${kind}-warmup` });
  const result = { connect, steps: [] };
  for (const rate of steps) {
    await ctx.quiet(generator, { quietMs: 200 });
    let step = await runStep(ctx, [nodeA, nodeB], generator, { ...common, rate, label: `${kind}-${rate}` });
    if (!step.held && !step.saturated) {
      // Delivered but p99 missed: one more try, as in the fan-out scenario.
      await ctx.quiet(generator, { quietMs: 200 });
      step = await runStep(ctx, [nodeA, nodeB], generator, { ...common, rate, label: `${kind}-${rate}-again` });
    }
    result.steps.push(step);
    ctx.step(
      kind,
      `${step.offered} msg/s offered → ${step.deliveredPerSecond} delivered; p99 local ${step.local.p99} ms, remote ${step.remote.p99} ms${step.held ? ", held" : ""}`,
    );
    if (step.saturated) break;
  }
  const held = result.steps.filter((step) => step.held);
  result.highestHeld = held.length ? held[held.length - 1].offered : null;
  result.peakDelivered = Math.max(...result.steps.map((step) => step.deliveredPerSecond));
  result.first = result.steps[0];
  const delivered = result.steps.reduce((sum, step) => sum + step.delivered, 0);
  result.cpuPerMessage = Math.round((result.steps.reduce((sum, step) => sum + step.cpuMicros, 0) / delivered) * 100) / 100;
  await ctx.stopAll();
  return result;
}

export default {
  name: "cluster",
  title: "Two nodes on the Redis adapter: cross-node fan-out",
  async run(ctx) {
    const { layout, ...rest } = plan(ctx.quick);
    const setup = { layout, clients: clientsOf({ ...layout, prefix: "k" }), companies: companyIds(layout.companies, "k"), ...rest };
    const baseline = await measurePair(ctx, "socketio", setup);
    const truss = await measurePair(ctx, "truss", setup);
    const low = setup.steps[0] * layout.perCompany;
    return {
      rows: [
        { metric: "peak delivered, both nodes", unit: "msg/s", better: "higher", truss: truss.peakDelivered, baseline: baseline.peakDelivered },
        { metric: "CPU of both nodes per delivered message", unit: "µs", better: "lower", truss: truss.cpuPerMessage, baseline: baseline.cpuPerMessage },
        { metric: "highest rate held (p99 < 50 ms)", unit: "msg/s", better: "higher", truss: truss.highestHeld, baseline: baseline.highestHeld },
        { metric: `remote (via Redis) p50 at ${low} msg/s`, unit: "ms", better: "lower", truss: truss.first.remote.p50, baseline: baseline.first.remote.p50 },
        { metric: `remote (via Redis) p99 at ${low} msg/s`, unit: "ms", better: "lower", truss: truss.first.remote.p99, baseline: baseline.first.remote.p99 },
        { metric: `local p99 at ${low} msg/s`, unit: "ms", better: "lower", truss: truss.first.local.p99, baseline: baseline.first.local.p99 },
      ],
      details: { layout, ...rest, truss, baseline },
    };
  },
};
