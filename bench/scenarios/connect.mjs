/**
 * Scenario 1: connection set-up with HS256 JWT verification. Opens the same
 * connections (100 at a time) against each server and reports connections
 * per second over the whole batch, and the set-up latency of one connection
 * (WebSocket upgrade, Engine.IO open, CONNECT with the token, verified).
 *
 * The servers run side by side, each on the server core with its own
 * generator, and take turns on slices of the batch (lib/turns.mjs). Each
 * first serves 1,500 connections unmeasured, closed before the turns.
 */
import { clientsOf } from "./layout.mjs";
import { inTurns } from "../lib/turns.mjs";

export default {
  name: "connect",
  title: "Connection set-up, HS256 JWT",
  async run(ctx) {
    const count = ctx.quick ? 300 : 3000;
    const slices = ctx.quick ? 3 : 10;
    const concurrency = 100;
    const clients = clientsOf({ companies: 100, perCompany: count / 100 });
    // Bare Socket.IO only verifies the token and joins the company room; "by hand" also does
    // what Truss does at every connection (session checks, presence, stream start, inbox replay; servers/by-hand/connect.mjs).
    const entries = [
      { name: "socketio", kind: "socketio", args: {} },
      { name: "by-hand", kind: "socketio", args: { features: ["connect"] } },
      { name: "truss", kind: "truss", args: {} },
      // The job by hand with what a server in production adds: rate limits and metrics (servers/by-hand/production.mjs).
      { name: "production", kind: "socketio", args: { features: ["connect", "production"] } },
    ];
    for (const entry of entries) {
      entry.server = await ctx.server(entry.kind, entry.args, { name: entry.name });
      entry.generator = await ctx.generator();
    }
    // A server in production compiled its connection path long ago: each server first opens (and closes) a batch
    // unmeasured, so the cold process's compiler work (a fifth of the core at first, finding 19) is not counted per connection.
    const warm = ctx.quick ? 0 : 1500;
    if (warm > 0) {
      ctx.step(`warm-up: ${warm} connections to each server, then closed`);
      const warmClients = clientsOf({ companies: 100, perCompany: warm / 100, prefix: "warm-" });
      for (const entry of entries) {
        await entry.generator.call("connect", { group: "warm", ports: [entry.server.port], clients: warmClients, concurrency });
        await entry.generator.call("close", { group: "warm" });
      }
      // The servers' disconnect work (presence going offline, announced a second later) is over before the first turn.
      await new Promise((resolve) => setTimeout(resolve, 1500));
    }
    const perSlice = Math.ceil(clients.length / slices);
    ctx.step(`${count} connections to each server, ${concurrency} at a time, in ${slices} turns`);
    await inTurns(
      ctx,
      entries,
      slices,
      async (entry, slice) => {
        const batch = clients.slice(slice * perSlice, (slice + 1) * perSlice);
        entry.result = await entry.generator.call("connect", { group: "all", ports: [entry.server.port], clients: batch, concurrency, cumulative: true });
      },
      {
        profileName: (entry) => entry.name,
        afterSlice: (slice) => ctx.step(`slice ${slice + 1}/${slices}`, entries.map(({ name, result }) => `${name} ${result.perSecond} conn/s`).join(", ")),
      },
    );
    for (const { name, result } of entries) {
      if (result.failed > 0) throw new Error(`${name}: ${result.failed} connections failed: ${JSON.stringify(result.errors)}`);
    }
    await ctx.stopAll();
    const [baseline, byHand, truss, production] = entries.map((entry) => entry.result);
    return {
      rows: [
        { metric: "connections per second", unit: "conn/s", better: "higher", truss: truss.perSecond, baseline: baseline.perSecond, target: { min: 0.95 } },
        {
          metric: "connections per second (baseline: the same job by hand: session checks, presence, stream start, inbox replay)",
          unit: "conn/s",
          better: "higher",
          truss: truss.perSecond,
          baseline: byHand.perSecond,
          target: { min: 1 },
        },
        {
          metric: "connections per second (baseline: by hand with the rate limits and metrics of a server in production)",
          unit: "conn/s",
          better: "higher",
          truss: truss.perSecond,
          baseline: production.perSecond,
        },
        { metric: "set-up latency p50", unit: "ms", better: "lower", truss: truss.latency.p50, baseline: baseline.latency.p50 },
        { metric: "set-up latency p99", unit: "ms", better: "lower", truss: truss.latency.p99, baseline: baseline.latency.p99 },
        { metric: "set-up latency p50 (baseline: the same job by hand)", unit: "ms", better: "lower", truss: truss.latency.p50, baseline: byHand.latency.p50 },
      ],
      details: { count, concurrency, warm, truss, baseline, byHand, production },
    };
  },
};
