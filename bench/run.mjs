#!/usr/bin/env node
/**
 * Runs the Truss benchmarks: each scenario against Truss, plain Socket.IO
 * (and raw `ws` for fan-out), in one run on one machine, then prints the
 * table on stdout and writes it as JSON.
 *
 *   node --expose-gc run.mjs                 every scenario (results/latest.json)
 *   node --expose-gc run.mjs --only fanout   one or more scenarios, comma-separated
 *   node --expose-gc run.mjs --quick         a smoke run with small numbers (seconds)
 *   node --expose-gc run.mjs --repeat 3      run everything 3 times; each figure is the median, each ratio the median of the rounds' ratios
 *   node --expose-gc run.mjs --cpu-prof      also write server CPU profiles to results/profiles/
 *   node --expose-gc run.mjs --out file.json write the JSON elsewhere
 *   node run.mjs --markdown results/latest.json  print a saved run as a Markdown table (no run)
 */
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { cpus, loadavg, release, totalmem } from "node:os";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ScenarioContext } from "./lib/context.mjs";
import { canPin } from "./lib/processes.mjs";
import { elapsedSeconds, progress } from "./lib/progress.mjs";
import { median, ratioOf, renderMarkdown, renderText, verdictOf } from "./lib/table.mjs";
import cluster from "./scenarios/cluster.mjs";
import companies from "./scenarios/companies.mjs";
import connect from "./scenarios/connect.mjs";
import deltas from "./scenarios/deltas.mjs";
import documents from "./scenarios/documents.mjs";
import inbox from "./scenarios/inbox.mjs";
import outbox from "./scenarios/outbox.mjs";
import presence from "./scenarios/presence.mjs";
import recovery from "./scenarios/recovery.mjs";
import topics from "./scenarios/topics.mjs";

/** Scenario modules in run order; one module may serve several names that share their set-up. */
const MODULES = [connect, companies, inbox, documents, deltas, presence, cluster, topics, recovery, outbox];
const NAMES = MODULES.flatMap((module) => module.names ?? [module.name]);
const BENCH_DIR = dirname(fileURLToPath(import.meta.url));

/** Versions of what is being compared, read from the installed packages. */
function versions() {
  const require = createRequire(import.meta.url);
  const versionOf = (name, from) => {
    try {
      let dir = dirname(require.resolve(name, from ? { paths: [dirname(require.resolve(from))] } : undefined));
      while (dir !== dirname(dir)) {
        try {
          const manifest = JSON.parse(readFileSync(`${dir}/package.json`, "utf8"));
          if (manifest.name === name) return manifest.version;
        } catch {
          // not a package root yet
        }
        dir = dirname(dir);
      }
    } catch {
      // not installed
    }
    return null;
  };
  let redis = null;
  try {
    redis = /v=(\S+)/.exec(execFileSync("redis-server", ["--version"], { encoding: "utf8" }))?.[1] ?? null;
  } catch {
    // no redis-server
  }
  return {
    node: process.version,
    "socket.io": versionOf("socket.io"),
    "engine.io": versionOf("engine.io", "socket.io"),
    ws: versionOf("ws"),
    jsonwebtoken: versionOf("jsonwebtoken"),
    ioredis: versionOf("ioredis"),
    "@socket.io/redis-adapter": versionOf("@socket.io/redis-adapter"),
    "@socket.io/redis-streams-adapter": versionOf("@socket.io/redis-streams-adapter"),
    "redis-server": redis,
    trussCore: process.env.TRUSS_CORE ?? "workspace @truss/core",
  };
}

const { values } = parseArgs({
  // `pnpm bench -- --only fanout` may hand over a literal "--", which would end option parsing.
  args: process.argv.slice(2).filter((arg) => arg !== "--"),
  options: {
    only: { type: "string" },
    quick: { type: "boolean", default: false },
    repeat: { type: "string", default: "1" },
    "cpu-prof": { type: "boolean", default: false },
    out: { type: "string" },
    markdown: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
  allowPositionals: false,
});

if (values.help) {
  process.stdout.write(`usage: node --expose-gc run.mjs [--only ${NAMES.join(",")}] [--quick] [--repeat N] [--cpu-prof] [--out file] | --markdown file.json\n`);
  process.exit(0);
}

if (values.markdown) {
  const saved = JSON.parse(readFileSync(values.markdown, "utf8"));
  process.stdout.write(`${renderMarkdown(saved.scenarios)}\n`);
  process.exit(0);
}

const only = values.only?.split(",").map((name) => name.trim()).filter(Boolean);
const unknown = only?.filter((name) => !NAMES.includes(name)) ?? [];
if (unknown.length > 0) {
  process.stderr.write(`unknown scenario(s): ${unknown.join(", ")}; choose from ${NAMES.join(", ")}\n`);
  process.exit(2);
}
const repeat = Number(values.repeat);
if (!Number.isInteger(repeat) || repeat < 1) {
  process.stderr.write(`--repeat takes a whole number of rounds, at least 1; got ${values.repeat}\n`);
  process.exit(2);
}
const wanted = new Set(only ?? NAMES);
const selected = MODULES.map((module) => ({ module, names: (module.names ?? [module.name]).filter((name) => wanted.has(name)) })).filter(
  ({ names }) => names.length > 0,
);
const complete = !only && !values.quick;
const outFile = resolve(values.out ?? `${BENCH_DIR}/results/${complete ? "latest.json" : "partial.tmp.json"}`);

const ctx = new ScenarioContext({ quick: values.quick, cpuProf: values["cpu-prof"] });
let failed = false;

const shutdown = async () => {
  await ctx.close();
  process.exit(130);
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);

const loadAtStart = loadavg()[0];
if (loadAtStart > 0.5) {
  progress("bench", `warning: load average ${loadAtStart.toFixed(2)} before the start; other work on this machine will show in the figures`);
}
progress("bench", `${[...wanted].join(", ")}${values.quick ? " (quick)" : ""}`, canPin() ? "server on core 0, generator on core 1" : "taskset not found: processes are not pinned");
const rounds = [];
for (let round = 1; round <= repeat; round++) {
  const results = [];
  for (const { module, names } of selected) {
    const name = names.join("+");
    ctx.scenario = repeat > 1 ? `${name} (round ${round}/${repeat})` : name;
    const startedAt = elapsedSeconds();
    progress(ctx.scenario, module.title);
    try {
      const result = await module.run(ctx, new Set(names));
      results.push({ name, title: module.title, seconds: Math.round(elapsedSeconds() - startedAt), ...result });
    } catch (error) {
      failed = true;
      progress(ctx.scenario, "FAILED", error instanceof Error ? error.message : String(error));
      results.push({ name, title: module.title, error: error instanceof Error ? error.stack : String(error) });
    } finally {
      await ctx.stopAll();
    }
    progress(ctx.scenario, `done in ${Math.round(elapsedSeconds() - startedAt)} s`);
  }
  rounds.push(results);
}
const results = repeat === 1 ? rounds[0] : mergeRounds(rounds);
await ctx.close();

const report = {
  generatedAt: new Date().toISOString(),
  complete,
  quick: values.quick,
  rounds: repeat,
  seconds: Math.round(elapsedSeconds()),
  machine: {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    platform: `${process.platform} ${process.arch} ${release()}`,
    pinned: canPin(),
    // One-minute load average before and after: anything else running shows up in the figures.
    loadAverage: { start: Math.round(loadAtStart * 100) / 100, end: Math.round(loadavg()[0] * 100) / 100 },
  },
  versions: versions(),
  scenarios: results.map((result) => ({
    ...result,
    rows: result.rows?.map((row) => ({ ...row, ratio: ratioOf(row), verdict: verdictOf(row) })),
  })),
};
mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(outFile, `${JSON.stringify(report, null, 2)}\n`);

process.stdout.write(`${renderText(results)}\n`);
progress("bench", `finished in ${report.seconds} s`, `JSON: ${outFile}`);
process.exit(failed ? 1 : 0);

/**
 * Several rounds as one result: each figure is the median of the rounds',
 * and each ratio the median of the rounds' own ratios (each measured in one
 * run, on one machine state), with every round's figures kept beside it.
 * Rows are matched by position: a scenario reports the same rows each round.
 */
function mergeRounds(allRounds) {
  return allRounds[0].map((first, index) => {
    const same = allRounds.map((results) => results[index]);
    if (same.some((result) => result.error)) return same.find((result) => result.error);
    return {
      ...first,
      seconds: same.reduce((sum, result) => sum + result.seconds, 0),
      rows: first.rows.map((row, rowIndex) => {
        const perRound = same.map((result) => result.rows[rowIndex]);
        return {
          ...row,
          truss: median(perRound.map((r) => r.truss)),
          baseline: median(perRound.map((r) => r.baseline)),
          ceiling: median(perRound.map((r) => r.ceiling)),
          ratio: median(perRound.map((r) => ratioOf(r))),
          rounds: perRound.map((r) => ({ truss: r.truss, baseline: r.baseline, ratio: ratioOf(r) })),
        };
      }),
      details: same.map((result) => result.details),
    };
  });
}
