/**
 * Scenario 9: publishing from the database of record, on the machine's
 * PostgreSQL (127.0.0.1:5432, user postgres, database `test`), in a schema
 * created for the run and dropped at its end. One Truss node
 * (servers/truss-outbox.mjs) runs the application's transactions and the
 * relay of `@truss/postgres`'s outbox, woken by LISTEN/NOTIFY:
 *
 * - commit-to-device latency at a steady rate of commits (each `BEGIN`, an
 *   application row `INSERT`, the outbox row, `COMMIT`), from the time each
 *   commit was scheduled to its arrival on every device of the company,
 *   against the dual write (the same transaction without the outbox row,
 *   then `engine.toCompany(...).emit` after the commit) in the same run;
 * - relay throughput: rows committed while the relay is stopped, then the
 *   time from its start until every row has reached its device, against the
 *   same broadcasts emitted straight through the engine;
 * - what the outbox row adds to the application's transaction: pairs of
 *   transactions one at a time, with and without it, alternating, with the
 *   relay running and then stopped; and the most commits a second, 20
 *   transactions at a time, with and without it;
 * - document commits with `postgresStores` against `redisStores`, the
 *   `documents` scenario's closed loop of writers.
 */
import pg from "pg";
import { awaitDelivery } from "../lib/settle.mjs";
import { clientsOf, companyIds } from "./layout.mjs";

/** The issue's bars. */
const P99_WITHIN_MS = 50;
const ROWS_PER_SECOND_AT_LEAST = 5000;
const ADDED_P50_WITHIN_MS = 1;

function plan(quick) {
  if (quick) {
    return {
      layout: { companies: 2, perCompany: 5 },
      rate: 200,
      warmupMs: 200,
      stepMs: 700,
      rows: 1000,
      pairs: 50,
      ceilingMs: 500,
      documents: { writers: 10, docs: 10, fields: 10, durationMs: 300 },
    };
  }
  return {
    layout: { companies: 10, perCompany: 20 },
    rate: 500,
    warmupMs: 1000,
    stepMs: 5000,
    rows: 20_000,
    pairs: 500,
    ceilingMs: 2000,
    documents: { writers: 50, docs: 10, fields: 10, durationMs: 2000 },
  };
}

/** A connection to the shared PostgreSQL, for the schema's creation and removal only. */
async function admin(sql) {
  const client = new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database: "test" });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** One paced step of commits; `via` is `outbox` or `direct`. */
async function commitStep(ctx, server, generator, { companies, perCompany, rate, durationMs, via }) {
  await generator.call("reset");
  const cpuBefore = await server.call("cpu");
  const sent = await ctx.profiled(server, `outbox-${via}-${rate}`, () => server.call("commits", { companies, rate, durationMs, via }));
  const expected = sent.stored * perCompany;
  // A relay behind on a busy machine can pause for a few hundred ms between
  // batches: wait for a full second of silence before calling it done.
  const stats = await awaitDelivery(generator, (current) => current.delivered >= expected, { pollMs: 500, maxMs: 60_000 });
  const cpuMicros = (await server.call("cpu")) - cpuBefore;
  if (sent.failed > 0) throw new Error(`${via}: ${sent.failed} of ${sent.sent} commits failed`);
  if (stats.delivered !== expected) throw new Error(`${via}: ${stats.delivered} of ${expected} messages arrived`);
  return {
    via,
    rate,
    planned: sent.planned,
    sent: sent.sent,
    committed: sent.stored,
    delivered: stats.delivered,
    latency: stats.latency,
    transactions: sent.transactions,
    maxInFlight: sent.maxInFlight,
    eventLoopDelay: sent.eventLoopDelay,
    cpuPerCommit: sent.stored ? Math.round(cpuMicros / sent.stored) : null,
    relay: sent.relay,
  };
}

/**
 * Stops the relay, commits `rows` outbox rows to `companies`, starts a fresh
 * relay (`batchSize` when given) and times it from its start until the last
 * row reached its device.
 */
async function drainStep(ctx, server, generator, { companies, rows, batchSize }) {
  const label = `relay${batchSize ? ` (batches of ${batchSize})` : ""}`;
  await server.call("stopRelay");
  const fill = await server.call("fill", { companies, rows }, 300_000);
  ctx.step(label, `${fill.pending} rows committed with the relay stopped in ${fill.elapsedMs} ms; starting it`);
  await generator.call("reset");
  const cpuBefore = await server.call("cpu");
  const relayOptions = batchSize ? { batchSize } : {};
  const drain = await ctx.profiled(server, `outbox-relay-drain${batchSize ? `-${batchSize}` : ""}`, () => server.call("drain", { expected: rows, relayOptions }, 300_000));
  const drained = await awaitDelivery(generator, (current) => current.delivered >= rows, { maxMs: 30_000 });
  const cpuMicros = (await server.call("cpu")) - cpuBefore;
  if (drained.delivered !== rows || drain.left !== 0) {
    throw new Error(`${label}: ${drained.delivered} of ${rows} rows arrived, ${drain.left} left in the table (${JSON.stringify(drain.stats)})`);
  }
  const drainMs = Math.round(drained.lastAt - drain.startedAt);
  const result = {
    rows,
    batchSize: batchSize ?? "default",
    drainMs,
    publishedMs: drain.publishedMs,
    rowsPerSecond: Math.round((rows / drainMs) * 1000),
    batches: drain.stats.batches,
    cpuPerRow: Math.round((cpuMicros / rows) * 100) / 100,
    fill,
    stats: drain.stats,
  };
  ctx.step(label, `${rows} rows to devices in ${drainMs} ms (${result.rowsPerSecond} rows/s, ${result.batches} batches, ${result.cpuPerRow} µs CPU/row)`);
  await ctx.quiet(generator, { quietMs: 200 });
  return result;
}

/** The `documents` scenario's measurement of one Truss server, on `store`. */
async function documentCommits(ctx, store, setup, pgSchema) {
  const { clients, docs, fields, durationMs } = setup;
  const redisPort = store === "redis" ? (await ctx.redis()).port : undefined;
  const label = `truss-${store}`;
  const server = await ctx.server("truss", { features: ["documents"], store, redisPort, prefix: ctx.prefix(), pgSchema }, { name: label });
  const generator = await ctx.generator();
  await server.call("seedDocuments", { companyId: clients[0].companyId, docs, fields });
  const connect = await generator.call("connect", { group: "writers", ports: [server.port], clients, concurrency: 50 });
  if (connect.failed > 0) throw new Error(`${label}: ${connect.failed} connections failed: ${JSON.stringify(connect.errors)}`);
  await ctx.quiet(generator);
  await generator.call("reset");
  const cpuBefore = await server.call("cpu");
  const result = await ctx.profiled(server, `documents-${label}`, () => generator.call("write", { group: "writers", durationMs, docs, fields }));
  const cpuMicros = (await server.call("cpu")) - cpuBefore;
  if (result.error > 0) throw new Error(`${label}: ${result.error} updates failed: ${JSON.stringify(result.errors)}`);
  const commits = result.applied + result.merged;
  const attempts = commits + result.conflict;
  const summary = {
    ...result,
    commitsPerSecond: Math.round((commits / result.elapsedMs) * 1000),
    conflictRate: attempts ? Math.round((result.conflict / attempts) * 1000) / 1000 : null,
    cpuPerUpdate: attempts ? Math.round(cpuMicros / attempts) : null,
  };
  ctx.step(`documents ${store}`, `${summary.commitsPerSecond} commits/s, conflict rate ${summary.conflictRate}, p99 ${result.latency.p99} ms`);
  await ctx.stopAll();
  return summary;
}

async function measure(ctx, pgSchema) {
  const { layout, rate, warmupMs, stepMs, rows: rowCount, pairs, ceilingMs, documents } = plan(ctx.quick);
  const live = clientsOf({ ...layout, prefix: "o" });
  const liveCompanies = companyIds(layout.companies, "o");
  // The drain's devices: one per company, in companies of their own, so the
  // drain measures the relay and not the fan-out to 20 devices.
  const drainers = clientsOf({ companies: layout.companies, perCompany: 1, prefix: "r" });
  const drainCompanies = companyIds(layout.companies, "r");

  const server = await ctx.server("truss-outbox", { pgSchema }, { name: "truss-outbox" });
  const generator = await ctx.generator();
  ctx.step("outbox", `schema ${pgSchema}; connecting ${live.length + drainers.length} devices`);
  for (const [group, clients] of [
    ["live", live],
    ["drain", drainers],
  ]) {
    const connect = await generator.call("connect", { group, ports: [server.port], clients, concurrency: 100 });
    if (connect.failed > 0) throw new Error(`${connect.failed} connections failed: ${JSON.stringify(connect.errors)}`);
  }
  await ctx.quiet(generator);

  // Commit-to-device latency, the dual write first, then the outbox, after a short warm-up of each.
  const common = { companies: liveCompanies, perCompany: layout.perCompany, rate };
  for (const via of ["direct", "outbox"]) await commitStep(ctx, server, generator, { ...common, durationMs: warmupMs, via });
  await ctx.quiet(generator, { quietMs: 200 });
  const steps = {};
  for (const via of ["direct", "outbox"]) {
    steps[via] = await commitStep(ctx, server, generator, { ...common, durationMs: stepMs, via });
    const step = steps[via];
    ctx.step(
      `commit → device ${via}`,
      `${rate} commits/s × ${layout.perCompany} devices: p50 ${step.latency.p50} ms, p99 ${step.latency.p99} ms; transaction p50 ${step.transactions.p50} ms; server ${step.cpuPerCommit} µs CPU/commit`,
    );
    await ctx.quiet(generator, { quietMs: 200 });
  }

  // The same outbox step with the relay's connections (its claims and its
  // LISTEN) from a pool of its own, so it never queues behind the
  // application's transactions for one.
  await server.call("restartRelay", { ownPoolSize: 2 });
  steps.outboxOwnPool = await commitStep(ctx, server, generator, { ...common, durationMs: stepMs, via: "outbox" });
  ctx.step(
    "commit → device outbox, relay on its own pool",
    `p50 ${steps.outboxOwnPool.latency.p50} ms, p99 ${steps.outboxOwnPool.latency.p99} ms; transaction p50 ${steps.outboxOwnPool.transactions.p50} ms`,
  );
  await server.call("restartRelay", {});
  await ctx.quiet(generator, { quietMs: 200 });

  // What the outbox row adds to a transaction, one at a time: with the relay
  // running (what the application sees: each commit wakes it, and it works
  // beside the next transaction), then with it stopped (the INSERT and the
  // NOTIFY alone). The rows of the second wait until the relay is back.
  const cost = await server.call("transactions", { count: pairs, companyId: "nobody" }, 300_000);
  const addedP50 = Math.round((cost.withOutbox.p50 - cost.without.p50) * 1000) / 1000;
  ctx.step("transaction", `${pairs} pairs one at a time: p50 ${cost.withOutbox.p50} ms with the outbox row, ${cost.without.p50} ms without (+${addedP50} ms)`);
  await server.call("stopRelay");
  const costStopped = await server.call("transactions", { count: pairs, companyId: "nobody" }, 300_000);
  const addedP50Stopped = Math.round((costStopped.withOutbox.p50 - costStopped.without.p50) * 1000) / 1000;
  ctx.step(
    "transaction, relay stopped",
    `${pairs} pairs: p50 ${costStopped.withOutbox.p50} ms with the outbox row, ${costStopped.without.p50} ms without (+${addedP50Stopped} ms)`,
  );
  // The most commits a second, 20 transactions at a time (the pool's size),
  // with the outbox row and without, the relay still stopped.
  const ceiling = {};
  for (const via of ["none", "outbox"]) {
    ceiling[via] = await server.call("ceiling", { durationMs: ceilingMs, concurrency: 20, via, companyId: "nobody" }, 300_000);
  }
  ctx.step("commit ceiling", `20 at a time: ${ceiling.outbox.perSecond} commits/s with the outbox row, ${ceiling.none.perSecond} without`);
  await server.call("restartRelay", {});
  const flushed = await server.call("waitEmpty");
  if (flushed.left > 0) throw new Error(`the relay left ${flushed.left} rows of the transaction pairs unpublished`);
  await ctx.quiet(generator, { quietMs: 200 });

  // Relay throughput: rows committed while it is stopped, then drained by a
  // fresh relay with its default batch, and again with batches of 1,000.
  const relayed = await drainStep(ctx, server, generator, { companies: drainCompanies, rows: rowCount });
  const relayedLargeBatches = await drainStep(ctx, server, generator, { companies: drainCompanies, rows: rowCount, batchSize: 1000 });
  await server.call("restartRelay", {});

  await generator.call("reset");
  const burstCpuBefore = await server.call("cpu");
  const burst = await ctx.profiled(server, "outbox-direct-burst", () => server.call("burst", { companies: drainCompanies, count: rowCount }));
  const burstStats = await awaitDelivery(generator, (current) => current.delivered >= rowCount, { maxMs: 30_000 });
  const burstCpu = (await server.call("cpu")) - burstCpuBefore;
  if (burstStats.delivered !== rowCount) throw new Error(`direct: ${burstStats.delivered} of ${rowCount} broadcasts arrived`);
  const direct = {
    rows: rowCount,
    drainMs: Math.round(burstStats.lastAt - burst.startedAt),
    cpuPerRow: Math.round((burstCpu / rowCount) * 100) / 100,
  };
  direct.rowsPerSecond = Math.round((rowCount / direct.drainMs) * 1000);
  ctx.step("direct", `the same ${rowCount} broadcasts through the engine in ${direct.drainMs} ms (${direct.rowsPerSecond}/s)`);
  await server.call("close");
  await ctx.stopAll();

  // Document commits: PostgreSQL stores against Redis stores, the `documents` scenario's loop.
  const docs = Array.from({ length: documents.docs }, (_, index) => `p${index}`);
  const fields = Array.from({ length: documents.fields }, (_, index) => `f${index}`);
  const setup = { clients: clientsOf({ companies: 1, perCompany: documents.writers, prefix: "od" }), docs, fields, durationMs: documents.durationMs };
  const onRedis = await documentCommits(ctx, "redis", setup, pgSchema);
  const onPostgres = await documentCommits(ctx, "postgres", setup, pgSchema);

  const { outbox: viaOutbox, direct: viaDirect } = steps;
  const rows = [
    { metric: `commit → device p50 at ${rate} commits/s (baseline: emit after commit)`, unit: "ms", better: "lower", truss: viaOutbox.latency.p50, baseline: viaDirect.latency.p50 },
    {
      metric: `commit → device p99 at ${rate} commits/s (baseline: emit after commit)`,
      unit: "ms",
      better: "lower",
      truss: viaOutbox.latency.p99,
      baseline: viaDirect.latency.p99,
      target: { atMost: P99_WITHIN_MS },
    },
    {
      metric: `commit → device p99, relay on a pool of its own (baseline: emit after commit)`,
      unit: "ms",
      better: "lower",
      truss: steps.outboxOwnPool.latency.p99,
      baseline: viaDirect.latency.p99,
      target: { atMost: P99_WITHIN_MS },
    },
    { metric: `server CPU per commit (baseline: emit after commit)`, unit: "µs", better: "lower", truss: viaOutbox.cpuPerCommit, baseline: viaDirect.cpuPerCommit },
    {
      metric: `relay: ${rowCount} rows to devices, one node (baseline: the same emits direct)`,
      unit: "ms",
      better: "lower",
      truss: relayed.drainMs,
      baseline: direct.drainMs,
      // ≥ 5,000 rows a second.
      target: { atMost: Math.round((rowCount / ROWS_PER_SECOND_AT_LEAST) * 1000) },
    },
    { metric: "relay: rows per second (baseline: the same emits direct)", unit: "/s", better: "higher", truss: relayed.rowsPerSecond, baseline: direct.rowsPerSecond },
    {
      metric: "relay: rows per second, batches of 1,000 (baseline: the same emits direct)",
      unit: "/s",
      better: "higher",
      truss: relayedLargeBatches.rowsPerSecond,
      baseline: direct.rowsPerSecond,
    },
    { metric: "transaction p50 with the outbox row (baseline: without)", unit: "ms", better: "lower", truss: cost.withOutbox.p50, baseline: cost.without.p50 },
    { metric: "added to the transaction at p50 by the outbox row", unit: "ms", better: "lower", truss: addedP50, target: { atMost: ADDED_P50_WITHIN_MS } },
    { metric: "added at p50 with the relay stopped (INSERT and NOTIFY alone)", unit: "ms", better: "lower", truss: addedP50Stopped, target: { atMost: ADDED_P50_WITHIN_MS } },
    {
      metric: "commits per second, 20 at a time, with the outbox row (baseline: without)",
      unit: "/s",
      better: "higher",
      truss: ceiling.outbox.perSecond,
      baseline: ceiling.none.perSecond,
    },
    {
      metric: "documents: commits per second on PostgreSQL (baseline: Redis)",
      unit: "/s",
      better: "higher",
      truss: onPostgres.commitsPerSecond,
      baseline: onRedis.commitsPerSecond,
    },
    { metric: "documents: server CPU per update on PostgreSQL (baseline: Redis)", unit: "µs", better: "lower", truss: onPostgres.cpuPerUpdate, baseline: onRedis.cpuPerUpdate },
    { metric: "documents: update ack p99 on PostgreSQL (baseline: Redis)", unit: "ms", better: "lower", truss: onPostgres.latency.p99, baseline: onRedis.latency.p99 },
  ];
  return {
    rows,
    details: {
      devices: live.length,
      layout,
      rate,
      stepMs,
      steps,
      transactions: { pairs, ...cost, addedP50, relayStopped: { ...costStopped, addedP50: addedP50Stopped } },
      ceiling,
      relay: relayed,
      relayLargeBatches: relayedLargeBatches,
      direct,
      documents: { ...documents, redis: onRedis, postgres: onPostgres },
    },
  };
}

export default {
  name: "outbox",
  title: "Publishing from PostgreSQL: the outbox and relay, and documents in PostgreSQL",
  async run(ctx) {
    const pgSchema = `bench_outbox_${process.pid}_${Date.now().toString(36)}`;
    try {
      return await measure(ctx, pgSchema);
    } finally {
      await ctx.stopAll();
      await admin(`DROP SCHEMA IF EXISTS "${pgSchema}" CASCADE`).catch((error) => ctx.step("outbox", `could not drop schema ${pgSchema}: ${error.message}`));
    }
  },
};
