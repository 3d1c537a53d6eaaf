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

function plan(quick) {
  if (quick) return { layout: { companies: 5, perCompany: 10 }, steadyRate: 200, floodRate: 2000, stepMs: 300, queued: 20 };
  return { layout: { companies: 10, perCompany: 100 }, steadyRate: 2000, floodRate: 40_000, stepMs: 1500, queued: 100 };
}

async function sendStep(ctx, server, generator, { users, rate, durationMs, label }) {
  await generator.call("reset");
  const cpuBefore = await server.call("cpu");
  const sent = await ctx.profiled(server, label, () => server.call("toUser", { users, rate, durationMs }, 120_000));
  const stats = await awaitDelivery(generator, (current) => current.inboxReceived >= sent.stored, { maxMs: 10_000 });
  const cpuMicros = (await server.call("cpu")) - cpuBefore;
  const seconds = Math.max(durationMs, stats.lastAt - sent.startedAt) / 1000;
  return {
    rate,
    planned: sent.planned,
    sent: sent.sent,
    stored: sent.stored,
    failed: sent.failed,
    received: stats.inbox.received,
    duplicates: stats.inbox.duplicates,
    deliveredPerSecond: Math.round(stats.inbox.received / seconds),
    acks: stats.inbox.acks,
    cpuPerMessage: stats.inbox.received ? Math.round((cpuMicros / stats.inbox.received) * 100) / 100 : null,
    latency: stats.inbox.latency,
  };
}

async function measureServer(ctx, kind, store, setup) {
  const { clients, users, steadyRate, floodRate, stepMs, queued } = setup;
  const redisPort = store === "redis" ? (await ctx.redis()).port : undefined;
  const label = `${kind}-${store}`;
  const server = await ctx.server(kind, { features: ["inbox"], store, redisPort, prefix: ctx.prefix() }, { name: label });
  const generator = await ctx.generator();
  ctx.step(label, `connecting ${clients.length} devices`);
  const connect = await generator.call("connect", { group: "live", ports: [server.port], clients, concurrency: 100 });
  if (connect.failed > 0) throw new Error(`${label}: ${connect.failed} connections failed: ${JSON.stringify(connect.errors)}`);
  await ctx.quiet(generator);

  const steady = await sendStep(ctx, server, generator, { users, rate: steadyRate, durationMs: stepMs, label: `${label}-steady` });
  ctx.step(label, `steady ${steadyRate} msg/s: p50 ${steady.latency.p50} ms, p99 ${steady.latency.p99} ms`);
  await ctx.quiet(generator, { quietMs: 200 });
  const flood = await sendStep(ctx, server, generator, { users, rate: floodRate, durationMs: stepMs, label: `${label}-flood` });
  ctx.step(label, `flood ${floodRate} msg/s offered: ${flood.deliveredPerSecond} delivered/s, p99 ${flood.latency.p99} ms, ${flood.cpuPerMessage} µs CPU/msg`);

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
  await ctx.stopAll();
  return { connect, steady, flood, enqueue, drain };
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
      const baseline = await measureServer(ctx, "socketio", store, setup);
      const truss = await measureServer(ctx, "truss", store, setup);
      results[store] = { truss, baseline };
      rows.push(
        { metric: `${store}: delivered under flood`, unit: "msg/s", better: "higher", truss: truss.flood.deliveredPerSecond, baseline: baseline.flood.deliveredPerSecond, target: { min: 0.95 } },
        { metric: `${store}: server CPU per message (flood)`, unit: "µs", better: "lower", truss: truss.flood.cpuPerMessage, baseline: baseline.flood.cpuPerMessage },
        { metric: `${store}: p50 at ${setup.steadyRate} msg/s`, unit: "ms", better: "lower", truss: truss.steady.latency.p50, baseline: baseline.steady.latency.p50 },
        { metric: `${store}: p99 at ${setup.steadyRate} msg/s`, unit: "ms", better: "lower", truss: truss.steady.latency.p99, baseline: baseline.steady.latency.p99 },
        { metric: `${store}: drain ${clients.length} devices × ${setup.queued}`, unit: "ms", better: "lower", truss: truss.drain.drainMs, baseline: baseline.drain.drainMs },
      );
    }
    return { rows, details: { devices: clients.length, ...rest, ...results } };
  },
};
