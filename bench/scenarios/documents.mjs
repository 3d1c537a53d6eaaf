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
 *
 * A fourth server does the job by hand with the rate limits and metrics a
 * server in production keeps (servers/by-hand/production.mjs). The four run
 * side by side, each on the server core with its own generator, and take
 * turns on the same load in short slices (lib/turns.mjs).
 */
import { clientsOf } from "./layout.mjs";
import { inTurns } from "../lib/turns.mjs";

function plan(quick) {
  return { writers: quick ? 10 : 50, docs: 10, fields: 10, slices: quick ? 2 : 8, sliceMs: quick ? 150 : 300 };
}

async function measureStore(ctx, store, setup) {
  const { clients, docs, fields, slices, sliceMs } = setup;
  const redisPort = store === "redis" ? (await ctx.redis()).port : undefined;
  const entries = [
    { key: "baseline", kind: "socketio", mutationIds: false, features: ["documents"] },
    { key: "truss", kind: "truss", mutationIds: false, features: ["documents"] },
    { key: "withIds", kind: "truss", mutationIds: true, features: ["documents"] },
    // The job by hand with what a server in production adds: rate limits and metrics (servers/by-hand/production.mjs).
    { key: "production", kind: "socketio", mutationIds: false, features: ["documents", "production"] },
  ];
  for (const entry of entries) {
    entry.label = `${entry.kind}-${store}${entry.mutationIds ? "-mutation-ids" : ""}${entry.key === "production" ? "-production" : ""}`;
    entry.server = await ctx.server(entry.kind, { features: entry.features, store, redisPort, prefix: ctx.prefix() }, { name: entry.label });
    entry.generator = await ctx.generator();
    await entry.server.call("seedDocuments", { companyId: clients[0].companyId, docs, fields });
    const connect = await entry.generator.call("connect", { group: "writers", ports: [entry.server.port], clients, concurrency: 50 });
    if (connect.failed > 0) throw new Error(`${entry.label}: ${connect.failed} connections failed: ${JSON.stringify(connect.errors)}`);
    await ctx.quiet(entry.generator);
    entry.cpuMicros = 0;
  }
  await inTurns(
    ctx,
    entries,
    slices,
    async (entry) => {
      const cpuBefore = await entry.server.call("cpu");
      entry.result = await entry.generator.call("write", { group: "writers", durationMs: sliceMs, docs, fields, mutationIds: entry.mutationIds, cumulative: true });
      entry.cpuMicros += (await entry.server.call("cpu")) - cpuBefore;
    },
    { profileName: (entry) => entry.label },
  );
  const summaries = {};
  for (const { key, label, result, cpuMicros } of entries) {
    const commits = result.applied + result.merged;
    const attempts = commits + result.conflict;
    const summary = {
      ...result,
      cpuMicros,
      commitsPerSecond: Math.round((commits / result.elapsedMs) * 1000),
      conflictRate: attempts ? Math.round((result.conflict / attempts) * 1000) / 1000 : null,
      cpuPerUpdate: attempts ? Math.round(cpuMicros / attempts) : null,
    };
    if (result.error > 0) throw new Error(`${label}: ${result.error} updates failed: ${JSON.stringify(result.errors)}`);
    ctx.step(label, `${summary.commitsPerSecond} commits/s, conflict rate ${summary.conflictRate}, p99 ${result.latency.p99} ms, ${summary.cpuPerUpdate} µs CPU/update`);
    summaries[key] = summary;
  }
  await ctx.stopAll();
  return summaries;
}

export default {
  name: "documents",
  title: "Document updates with compare-and-set, 50 writers",
  async run(ctx) {
    const { writers, ...rest } = plan(ctx.quick);
    const docs = Array.from({ length: rest.docs }, (_, index) => `p${index}`);
    const fields = Array.from({ length: rest.fields }, (_, index) => `f${index}`);
    const setup = { clients: clientsOf({ companies: 1, perCompany: writers, prefix: "d" }), docs, fields, slices: rest.slices, sliceMs: rest.sliceMs };
    const rows = [];
    const results = {};
    for (const store of ["memory", "redis"]) {
      const { baseline, truss, withIds, production } = await measureStore(ctx, store, setup);
      results[store] = { truss, baseline, withIds, production };
      rows.push(
        { metric: `${store}: commits per second`, unit: "/s", better: "higher", truss: truss.commitsPerSecond, baseline: baseline.commitsPerSecond, target: { min: 1 } },
        { metric: `${store}: server CPU per update`, unit: "µs", better: "lower", truss: truss.cpuPerUpdate, baseline: baseline.cpuPerUpdate },
        { metric: `${store}: commits per second (baseline: by hand with the rate limits and metrics of a server in production)`, unit: "/s", better: "higher", truss: truss.commitsPerSecond, baseline: production.commitsPerSecond },
        { metric: `${store}: server CPU per update (baseline: by hand with the rate limits and metrics of a server in production)`, unit: "µs", better: "lower", truss: truss.cpuPerUpdate, baseline: production.cpuPerUpdate },
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
