/**
 * Scenario 1: connection set-up with HS256 JWT verification. Opens the same
 * connections (100 at a time) against each server and reports connections
 * per second over the whole batch, and the set-up latency of one connection
 * (WebSocket upgrade, Engine.IO open, CONNECT with the token, verified).
 * Each server runs twice, alternating, and keeps its better run: on a small
 * shared machine the worse run mostly measures the neighbours.
 */
import { clientsOf } from "./layout.mjs";

export default {
  name: "connect",
  title: "Connection set-up, HS256 JWT",
  async run(ctx) {
    const count = ctx.quick ? 300 : 3000;
    const concurrency = 100;
    const clients = clientsOf({ companies: 100, perCompany: count / 100 });
    const best = {};
    // Bare Socket.IO only verifies the token and joins the company room; "by hand" also does
    // what Truss does at every connection (presence, stream start, inbox replay; servers/by-hand/connect.mjs).
    const servers = {
      socketio: { kind: "socketio", args: {} },
      "by-hand": { kind: "socketio", args: { features: ["connect"] } },
      truss: { kind: "truss", args: {} },
    };
    for (let round = 1; round <= (ctx.quick ? 1 : 2); round++) {
      for (const [name, { kind, args }] of Object.entries(servers)) {
        ctx.step(name, `round ${round}`, `${count} connections, ${concurrency} at a time`);
        const server = await ctx.server(kind, args, { name });
        const generator = await ctx.generator();
        const result = await ctx.profiled(server, `${name}-${round}`, () =>
          generator.call("connect", { group: "all", ports: [server.port], clients, concurrency }),
        );
        if (result.failed > 0) throw new Error(`${name}: ${result.failed} connections failed: ${JSON.stringify(result.errors)}`);
        ctx.step(name, `round ${round}`, `${result.perSecond} conn/s`);
        if (!best[name] || result.perSecond > best[name].perSecond) best[name] = result;
        await ctx.stopAll();
      }
    }
    const truss = best.truss;
    const baseline = best.socketio;
    const byHand = best["by-hand"];
    return {
      rows: [
        { metric: "connections per second", unit: "conn/s", better: "higher", truss: truss.perSecond, baseline: baseline.perSecond, target: { min: 0.95 } },
        {
          metric: "connections per second (baseline: the same job by hand: presence, stream start, inbox replay)",
          unit: "conn/s",
          better: "higher",
          truss: truss.perSecond,
          baseline: byHand.perSecond,
          target: { min: 1 },
        },
        { metric: "set-up latency p50", unit: "ms", better: "lower", truss: truss.latency.p50, baseline: baseline.latency.p50 },
        { metric: "set-up latency p99", unit: "ms", better: "lower", truss: truss.latency.p99, baseline: baseline.latency.p99 },
        { metric: "set-up latency p50 (baseline: the same job by hand)", unit: "ms", better: "lower", truss: truss.latency.p50, baseline: byHand.latency.p50 },
      ],
      details: { count, concurrency, truss, baseline, byHand },
    };
  },
};
