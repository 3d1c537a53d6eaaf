/**
 * Scenario 8: company broadcasts with recovery on, in memory and on Redis.
 * 1,000 devices (10 companies of 100), against three servers per store:
 *
 * - Truss, where every `toCompany().emit` is stored in the company's stream
 *   (the default in-memory stream store, or `redisStores` + `redisAdapter`);
 * - plain Socket.IO, live only (its default adapter, or
 *   `@socket.io/redis-adapter`): what recovery costs is measured against it;
 * - Socket.IO with connection state recovery
 *   (`{ maxDisconnectionDuration: 120000, skipMiddlewares: false }`; its
 *   in-memory adapter, or `@socket.io/redis-streams-adapter`): the same job
 *   done Socket.IO's way.
 *
 * On the two recovering servers, first the catch-up: 10 broadcasts to each
 * company so every device holds a position, then every device's TCP
 * connection is destroyed (a transport close, which Socket.IO recovers; a
 * clean disconnect it would not), 100 more broadcasts go to each company
 * while no device is connected, and all 1,000 reconnect at once. Timed from
 * the start of the reconnections until each device has its 100 missed
 * broadcasts, in order (see load/recovery.mjs for what each device does).
 * Then, on the same connections, and on the live-only server, the fan-out
 * ladder of the `fanout` scenario: peak delivered and server CPU per
 * delivered message.
 */
import { sleep } from "../lib/clock.mjs";
import { climbFanout } from "../lib/fanout.mjs";
import { clientsOf, companyIds } from "./layout.mjs";
import { awaitDelivery } from "../lib/settle.mjs";

/** The issue's bar: every device caught up within this. */
const CAUGHT_UP_WITHIN_MS = 5000;

function plan(quick) {
  if (quick) return { layout: { companies: 2, perCompany: 20 }, before: 2, missed: 10, warmup: 20, steps: [100], stepMs: 300 };
  return {
    layout: { companies: 10, perCompany: 100 },
    before: 10,
    missed: 100,
    warmup: 50,
    // Broadcasts per second over all companies; ×100 for messages per second.
    steps: [100, 200, 300, 450, 600, 800, 1000],
    stepMs: 1500,
  };
}

/** The three servers of one store: how each is started and how its devices keep their place. */
function serversOf(store, redisPort, prefix) {
  const redis = store === "redis";
  return {
    live: { kind: "socketio", args: { adapter: redis, redisPort, prefix: prefix() } },
    truss: { kind: "truss", args: { store, adapter: redis, redisPort, prefix: prefix() }, recovery: "truss" },
    csr: { kind: "socketio", args: { adapter: redis, recovery: true, redisPort, prefix: prefix() }, recovery: "socketio" },
  };
}

async function untilNoSockets(server, label) {
  for (let waited = 0; waited < 10_000; waited += 50) {
    if ((await server.call("sockets")) === 0) return;
    await sleep(50);
  }
  throw new Error(`${label}: the server still counts connections 10 s after the cut`);
}

/** Positions, the cut, the missed broadcasts, and every device reconnecting at once until it has them all. */
async function catchUp(ctx, server, generator, label, { clients, companies, before, missed }) {
  await generator.call("reset");
  await server.call("burst", { companies, perCompany: before });
  await awaitDelivery(generator, (current) => current.delivered >= before * clients.length);
  const cut = await generator.call("cut", { group: "devices" });
  if (cut.holdingPosition !== clients.length) throw new Error(`${label}: ${clients.length - cut.holdingPosition} devices hold no position before the cut`);
  await untilNoSockets(server, label);
  const burst = await server.call("burst", { companies, perCompany: missed });
  ctx.step(label, `${cut.cut} devices cut; ${burst.stored} broadcasts stored while they were away (${burst.elapsedMs} ms); all reconnecting`);
  const cpuBefore = await server.call("cpu");
  const recovered = await ctx.profiled(server, `${label}-catch-up`, () => generator.call("recover", { group: "devices", expected: missed }, 120_000));
  const cpuMs = Math.round(((await server.call("cpu")) - cpuBefore) / 1000);
  const all = recovered.caughtUp === clients.length;
  ctx.step(
    label,
    `${recovered.caughtUp}/${clients.length} caught up on ${missed} each${all ? "" : ` (failed ${recovered.failed}: ${JSON.stringify(recovered.errors)})`}: all in ${recovered.totalMs} ms, per device p50 ${recovered.caughtUpMs.p50} ms, p99 ${recovered.caughtUpMs.p99} ms; server CPU ${cpuMs} ms`,
  );
  return { ...recovered, all, cpuMs, burst };
}

async function measureServer(ctx, label, { kind, args, recovery }, setup) {
  const { layout, clients, companies, warmup, steps, stepMs } = setup;
  const server = await ctx.server(kind, args, { name: label });
  const generator = await ctx.generator();
  ctx.step(label, `connecting ${clients.length}`);
  const connect = await generator.call("connect", { group: "devices", ports: [server.port], clients, concurrency: 100, recovery });
  if (connect.failed > 0) throw new Error(`${label}: ${connect.failed} connections failed: ${JSON.stringify(connect.errors)}`);
  await ctx.quiet(generator);
  const result = { connect };
  if (recovery) {
    result.catchUp = await catchUp(ctx, server, generator, label, { clients, companies, before: setup.before, missed: setup.missed });
    await ctx.quiet(generator);
  }
  const { result: fanout } = await climbFanout(ctx, server, generator, { kind: label, companies, perCompany: layout.perCompany, warmup, steps, stepMs });
  result.fanout = fanout;
  await ctx.stopAll();
  return result;
}

export default {
  name: "recovery",
  title: "Company fan-out with recovery on, and 1,000 devices catching up, in memory and on Redis",
  async run(ctx) {
    const { layout, ...rest } = plan(ctx.quick);
    const setup = { layout, clients: clientsOf({ ...layout, prefix: "r" }), companies: companyIds(layout.companies, "r"), ...rest };
    const devices = setup.clients.length;
    const results = {};
    const rows = [];
    for (const store of ["memory", "redis"]) {
      const redisPort = store === "redis" ? (await ctx.redis()).port : undefined;
      const servers = serversOf(store, redisPort, () => ctx.prefix());
      const live = await measureServer(ctx, `socketio-${store}`, servers.live, setup);
      const truss = await measureServer(ctx, `truss-${store}`, servers.truss, setup);
      const csr = await measureServer(ctx, `socketio-csr-${store}`, servers.csr, setup);
      results[store] = { truss, live, csr };
      const caughtUpIn = (result) => (result.catchUp.all ? result.catchUp.totalMs : null);
      rows.push(
        { metric: `${store}: fan-out peak, recovery on vs live-only`, unit: "msg/s", better: "higher", truss: truss.fanout.peakDelivered, baseline: live.fanout.peakDelivered, target: { min: 0.9 } },
        { metric: `${store}: server CPU per delivered message vs live-only`, unit: "µs", better: "lower", truss: truss.fanout.cpuPerMessage, baseline: live.fanout.cpuPerMessage },
        { metric: `${store}: fan-out peak vs Socket.IO CSR`, unit: "msg/s", better: "higher", truss: truss.fanout.peakDelivered, baseline: csr.fanout.peakDelivered },
        { metric: `${store}: server CPU per delivered message vs CSR`, unit: "µs", better: "lower", truss: truss.fanout.cpuPerMessage, baseline: csr.fanout.cpuPerMessage },
        { metric: `${store}: ${devices} devices × ${setup.missed} missed, all caught up (vs CSR)`, unit: "ms", better: "lower", truss: caughtUpIn(truss), baseline: caughtUpIn(csr), target: { atMost: CAUGHT_UP_WITHIN_MS } },
        { metric: `${store}: caught up, p50 per device (vs CSR)`, unit: "ms", better: "lower", truss: truss.catchUp.caughtUpMs.p50, baseline: csr.catchUp.caughtUpMs.p50 },
        { metric: `${store}: caught up, p99 per device (vs CSR)`, unit: "ms", better: "lower", truss: truss.catchUp.caughtUpMs.p99, baseline: csr.catchUp.caughtUpMs.p99 },
        { metric: `${store}: server CPU for the catch-up (vs CSR)`, unit: "ms", better: "lower", truss: truss.catchUp.cpuMs, baseline: csr.catchUp.cpuMs },
      );
    }
    return { rows, details: { layout, devices, ...rest, ...results } };
  },
};
