/**
 * Scenario 5: document updates with compare-and-set, in-memory and Redis.
 * 50 writers of one company update 10 shared documents in a closed loop
 * (send `document:update` with the version they last saw, wait for the ack,
 * repeat), each time one of 10 fields at random. Stale writes to untouched
 * fields merge, stale writes to a field changed since are conflicts (Truss's
 * default `fieldMerge()`, and the same rule in servers/by-hand/documents.mjs);
 * every commit goes to the other 49 writers as `document:updated`. Truss
 * runs it twice: as above, and with a mutation id on every update (what
 * `@truss/client`'s outbox sends), to show what exactly-once costs.
 */
import { clientsOf } from "./layout.mjs";

function plan(quick) {
  return { writers: quick ? 10 : 50, docs: 10, fields: 10, durationMs: quick ? 300 : 2000 };
}

async function measureServer(ctx, kind, store, setup, { mutationIds = false } = {}) {
  const { clients, docs, fields, durationMs } = setup;
  const redisPort = store === "redis" ? (await ctx.redis()).port : undefined;
  const label = `${kind}-${store}${mutationIds ? "-mutation-ids" : ""}`;
  const server = await ctx.server(kind, { features: ["documents"], store, redisPort, prefix: ctx.prefix() }, { name: label });
  const generator = await ctx.generator();
  await server.call("seedDocuments", { companyId: clients[0].companyId, docs, fields });
  const connect = await generator.call("connect", { group: "writers", ports: [server.port], clients, concurrency: 50 });
  if (connect.failed > 0) throw new Error(`${label}: ${connect.failed} connections failed: ${JSON.stringify(connect.errors)}`);
  await ctx.quiet(generator);
  await generator.call("reset");
  const cpuBefore = await server.call("cpu");
  const result = await ctx.profiled(server, label, () => generator.call("write", { group: "writers", durationMs, docs, fields, mutationIds }));
  const cpuMicros = (await server.call("cpu")) - cpuBefore;
  const commits = result.applied + result.merged;
  const attempts = commits + result.conflict;
  const summary = {
    ...result,
    commitsPerSecond: Math.round((commits / result.elapsedMs) * 1000),
    conflictRate: attempts ? Math.round((result.conflict / attempts) * 1000) / 1000 : null,
    cpuPerUpdate: attempts ? Math.round(cpuMicros / attempts) : null,
  };
  if (result.error > 0) throw new Error(`${label}: ${result.error} updates failed: ${JSON.stringify(result.errors)}`);
  ctx.step(label, `${summary.commitsPerSecond} commits/s, conflict rate ${summary.conflictRate}, p99 ${result.latency.p99} ms`);
  await ctx.stopAll();
  return summary;
}

export default {
  name: "documents",
  title: "Document updates with compare-and-set, 50 writers",
  async run(ctx) {
    const { writers, ...rest } = plan(ctx.quick);
    const docs = Array.from({ length: rest.docs }, (_, index) => `p${index}`);
    const fields = Array.from({ length: rest.fields }, (_, index) => `f${index}`);
    const setup = { clients: clientsOf({ companies: 1, perCompany: writers, prefix: "d" }), docs, fields, durationMs: rest.durationMs };
    const rows = [];
    const results = {};
    for (const store of ["memory", "redis"]) {
      const baseline = await measureServer(ctx, "socketio", store, setup);
      const truss = await measureServer(ctx, "truss", store, setup);
      // The same Truss scenario with every update carrying a mutation id, as @truss/client's outbox sends them.
      const withIds = await measureServer(ctx, "truss", store, setup, { mutationIds: true });
      results[store] = { truss, baseline, withIds };
      rows.push(
        { metric: `${store}: commits per second`, unit: "/s", better: "higher", truss: truss.commitsPerSecond, baseline: baseline.commitsPerSecond, target: { min: 0.95 } },
        { metric: `${store}: server CPU per update`, unit: "µs", better: "lower", truss: truss.cpuPerUpdate, baseline: baseline.cpuPerUpdate },
        { metric: `${store}: conflict rate`, unit: "", better: "lower", truss: truss.conflictRate, baseline: baseline.conflictRate },
        { metric: `${store}: update ack p99`, unit: "ms", better: "lower", truss: truss.latency.p99, baseline: baseline.latency.p99 },
        {
          metric: `${store}: commits per second with mutation ids (baseline: Truss without)`,
          unit: "/s",
          better: "higher",
          truss: withIds.commitsPerSecond,
          baseline: truss.commitsPerSecond,
          target: { min: 0.95 },
        },
        { metric: `${store}: server CPU per update with mutation ids (baseline: Truss without)`, unit: "µs", better: "lower", truss: withIds.cpuPerUpdate, baseline: truss.cpuPerUpdate },
      );
    }
    return { rows, details: { writers, ...rest, ...results } };
  },
};
