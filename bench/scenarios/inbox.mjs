/**
 * Scenario 4: `toUser` through the inbox, with the in-memory and the Redis
 * stores. 1,000 devices (one per user, 10 companies) stay connected and
 * acknowledge what they get in batches, like the Truss client does. Against
 * Truss and a hand-written inbox on plain Socket.IO (servers/by-hand/inbox.mjs):
 *
 * - latency at a steady rate (from the time each message was scheduled to
 *   its arrival on the device);
 * - throughput under a flood: messages delivered per second when the server
 *   is offered more than it can store and push;
 * - drain: the devices disconnect, 100 messages are queued for each, and the
 *   time from the first reconnect until all 1,000 hold all 100.
 */
import { sleep } from "../lib/clock.mjs";
import { clientsOf } from "./layout.mjs";
import { awaitDelivery } from "../lib/settle.mjs";
import { inTurns } from "../lib/turns.mjs";

function plan(quick) {
  if (quick) return { layout: { companies: 5, perCompany: 10 }, steadyRate: 200, floodRate: 2000, stepMs: 300, floodSlices: 2, queued: 20 };
  return { layout: { companies: 10, perCompany: 100 }, steadyRate: 2000, floodRate: 40_000, stepMs: 1500, floodSlices: 4, queued: 100 };
}

async function sendStep(ctx, server, generator, { users, rate, durationMs }) {
  await generator.call("reset");
  const cpuBefore = await server.call("cpu");
  const sent = await server.call("toUser", { users, rate, durationMs }, 120_000);
  const stats = await awaitDelivery(generator, (current) => current.inboxReceived >= sent.stored, { maxMs: 10_000 });
  const cpuMicros = (await server.call("cpu")) - cpuBefore;
  const seconds = Math.max(durationMs, stats.lastAt - sent.startedAt) / 1000;
  return { rate, planned: sent.planned, sent: sent.sent, stored: sent.stored, failed: sent.failed, stats, seconds, cpuMicros };
}

/** What a step (or the sum of a flood's slices) comes to: deliveries, their rate and CPU, latency. */
function stepSummary({ rate, planned, sent, stored, failed, stats, seconds, cpuMicros }) {
  const { received, duplicates, acks, latency } = stats.inbox;
  return {
    rate,
    planned,
    sent,
    stored,
    failed,
    received,
    duplicates,
    deliveredPerSecond: Math.round(received / seconds),
    acks,
    cpuPerMessage: received ? Math.round((cpuMicros / received) * 100) / 100 : null,
    latency,
  };
}

/** Adds one flood slice into the running total (`null` before the first). */
function addSlice(total, slice) {
  if (!total) return { ...slice, stats: { inbox: { ...slice.stats.inbox } } };
  for (const key of ["planned", "sent", "stored", "failed", "seconds", "cpuMicros"]) total[key] += slice[key];
  for (const key of ["received", "duplicates", "acks"]) total.stats.inbox[key] += slice.stats.inbox[key];
  // The flood's rows are rates and CPU; its latency is the last slice's, kept only for the JSON.
  total.stats.inbox.latency = slice.stats.inbox.latency;
  return total;
}

/**
 * The servers of one store (Truss, the job by hand, and the job by hand
 * with production's limits and metrics), side by side on the server core
 * with a generator each: connect, a steady step each, then the flood in
 * slices that take turns (lib/turns.mjs; every slice delivered in full
 * before the next server's), then each one's drain.
 */
async function measureStore(ctx, store, setup) {
  const { clients, users, steadyRate, floodRate, stepMs, floodSlices, queued } = setup;
  const redisPort = store === "redis" ? (await ctx.redis()).port : undefined;
  const entries = [
    { key: "baseline", kind: "socketio", features: ["inbox"] },
    { key: "truss", kind: "truss", features: ["inbox"] },
    // The job by hand with what a server in production adds: rate limits and metrics (servers/by-hand/production.mjs).
    { key: "production", kind: "socketio", features: ["inbox", "production"] },
  ];
  for (const entry of entries) {
    entry.label = `${entry.kind}-${store}${entry.key === "production" ? "-production" : ""}`;
    entry.server = await ctx.server(entry.kind, { features: entry.features, store, redisPort, prefix: ctx.prefix() }, { name: entry.label });
    entry.generator = await ctx.generator();
    ctx.step(entry.label, `connecting ${clients.length} devices`);
    entry.connect = await entry.generator.call("connect", { group: "live", ports: [entry.server.port], clients, concurrency: 100 });
    if (entry.connect.failed > 0) throw new Error(`${entry.label}: ${entry.connect.failed} connections failed: ${JSON.stringify(entry.connect.errors)}`);
    await ctx.quiet(entry.generator);
  }
  for (const entry of entries) {
    entry.steady = stepSummary(await ctx.profiled(entry.server, `${entry.label}-steady`, () => sendStep(ctx, entry.server, entry.generator, { users, rate: steadyRate, durationMs: stepMs })));
    ctx.step(entry.label, `steady ${steadyRate} msg/s: p50 ${entry.steady.latency.p50} ms, p99 ${entry.steady.latency.p99} ms`);
    await ctx.quiet(entry.generator, { quietMs: 200 });
  }
  const sliceMs = Math.round(stepMs / floodSlices);
  await inTurns(
    ctx,
    entries,
    floodSlices,
    async (entry) => {
      entry.floodTotal = addSlice(entry.floodTotal, await sendStep(ctx, entry.server, entry.generator, { users, rate: floodRate, durationMs: sliceMs }));
      await ctx.quiet(entry.generator, { quietMs: 200 });
    },
    { profileName: (entry) => `${entry.label}-flood` },
  );
  for (const entry of entries) {
    entry.flood = stepSummary(entry.floodTotal);
    ctx.step(entry.label, `flood ${floodRate} msg/s offered in ${floodSlices} turns: ${entry.flood.deliveredPerSecond} delivered/s, ${entry.flood.cpuPerMessage} µs CPU/msg`);
  }

  for (const entry of entries) {
    const { label, server, generator } = entry;
    // Let the last acks land so each device's cursor is where it stopped.
    await sleep(200);
    await generator.call("close", { group: "live" });
    const enqueue = await server.call("enqueue", { users, perUser: queued }, 120_000);
    ctx.step(label, `queued ${queued} for each of ${users.length} offline devices in ${enqueue.elapsedMs} ms; reconnecting`);
    const drain = await ctx.profiled(server, `${label}-drain`, () =>
      generator.call("drain", { group: "drain", ports: [server.port], clients, perClient: queued, concurrency: 100 }, 120_000),
    );
    if (drain.timedOut) throw new Error(`${label}: ${drain.devices - drain.drained} devices did not get all ${queued} messages`);
    ctx.step(label, `drained ${drain.received} messages to ${drain.devices} devices in ${drain.drainMs} ms`);
    entry.enqueue = enqueue;
    entry.drain = drain;
  }
  await ctx.stopAll();
  const summaries = {};
  for (const { key, connect, steady, flood, enqueue, drain } of entries) summaries[key] = { connect, steady, flood, enqueue, drain };
  return summaries;
}

export default {
  name: "inbox",
  title: "toUser through the inbox, in-memory and Redis",
  async run(ctx) {
    const { layout, ...rest } = plan(ctx.quick);
    const clients = clientsOf({ ...layout, prefix: "i" });
    const setup = { clients, users: clients.map(({ companyId, userId }) => ({ companyId, userId })), ...rest };
    const results = {};
    const rows = [];
    for (const store of ["memory", "redis"]) {
      const { baseline, truss, production } = await measureStore(ctx, store, setup);
      results[store] = { truss, baseline, production };
      rows.push(
        { metric: `${store}: delivered under flood`, unit: "msg/s", better: "higher", truss: truss.flood.deliveredPerSecond, baseline: baseline.flood.deliveredPerSecond, target: { min: 1 } },
        { metric: `${store}: server CPU per message (flood)`, unit: "µs", better: "lower", truss: truss.flood.cpuPerMessage, baseline: baseline.flood.cpuPerMessage },
        { metric: `${store}: delivered under flood (baseline: by hand with the rate limits and metrics of a server in production)`, unit: "msg/s", better: "higher", truss: truss.flood.deliveredPerSecond, baseline: production.flood.deliveredPerSecond },
        { metric: `${store}: server CPU per message (flood) (baseline: by hand with the rate limits and metrics of a server in production)`, unit: "µs", better: "lower", truss: truss.flood.cpuPerMessage, baseline: production.flood.cpuPerMessage },
        { metric: `${store}: p50 at ${setup.steadyRate} msg/s`, unit: "ms", better: "lower", truss: truss.steady.latency.p50, baseline: baseline.steady.latency.p50 },
        { metric: `${store}: p99 at ${setup.steadyRate} msg/s`, unit: "ms", better: "lower", truss: truss.steady.latency.p99, baseline: baseline.steady.latency.p99 },
        { metric: `${store}: drain ${clients.length} devices × ${setup.queued}`, unit: "ms", better: "lower", truss: truss.drain.drainMs, baseline: baseline.drain.drainMs },
      );
    }
    return { rows, details: { devices: clients.length, ...rest, ...results } };
  },
};
