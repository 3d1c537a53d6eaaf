#!/usr/bin/env node
/**
 * Counts the instructions each server runs to set up a connection, under
 * valgrind's callgrind, so the comparison does not move with the host's
 * speed: the same build, load and inputs count the same within a few
 * percent, whatever else the machine is doing, where connections per second
 * on a shared 2-vCPU host swing by a fifth between rounds (finding 19).
 *
 *   node bench/instructions.mjs                       by hand, Truss and bare Socket.IO, 2 rounds
 *   node bench/instructions.mjs --rounds 3 --warm 3000 --count 1500
 *   node bench/instructions.mjs --out results/instructions.json
 *   node bench/instructions.mjs --servers truss      one server only (to compare two builds of the core)
 *   TRUSS_CORE=/path/to/core/dist/index.js node bench/instructions.mjs   another build of @truss/core
 *   node bench/instructions.mjs --by-function        also each function's own instructions per connection,
 *                                                    JIT code named from V8's --perf-basic-prof map
 *
 * What is counted: the server's main thread while it serves network events
 * (callgrind's `--toggle-collect=uv__io_poll`), with the microtasks each
 * event runs. Not counted: timers (heartbeats, Truss's periodic checks), and
 * the compiler's and garbage collector's helper threads. Each server first
 * opens `--warm` connections unmeasured (its connection path compiled, as a
 * server in production has long done), then `--count` measured ones; then
 * it idles for 5 s, counted too, and the idle rate times the measured phase's
 * wall time is taken off, since under valgrind a phase lasts tens of times
 * longer and the clients' heartbeat answers (the same for every server) would
 * otherwise weigh in. Needs valgrind (Debian: `apt-get install valgrind`);
 * a round of the three servers takes about six minutes on a 2-vCPU machine.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { serverScript } from "./lib/context.mjs";
import { BenchChild } from "./lib/processes.mjs";
import { byFunction } from "./lib/callgrind-functions.mjs";
import { progress } from "./lib/progress.mjs";
import { median } from "./lib/table.mjs";
import { clientsOf } from "./scenarios/layout.mjs";

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const IDLE_MS = 5000;
/** Under valgrind a command runs tens of times slower than natively. */
const SLOW_CALL_MS = 900_000;

/** The servers compared: the same three as the `connect` scenario's first rows. */
const SERVERS_ALL = [
  { name: "by-hand", kind: "socketio", args: { features: ["connect"] }, label: "the same job by hand" },
  { name: "truss", kind: "truss", args: {}, label: "Truss" },
  { name: "socketio", kind: "socketio", args: {}, label: "bare Socket.IO" },
];

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "2" },
    warm: { type: "string", default: "3000" },
    count: { type: "string", default: "1500" },
    out: { type: "string", default: join(BENCH_DIR, "results", "instructions.json") },
    servers: { type: "string", default: SERVERS_ALL.map(({ name }) => name).join(",") },
    "by-function": { type: "boolean", default: false },
  },
});
const SERVERS = values.servers.split(",").map((name) => {
  const server = SERVERS_ALL.find((candidate) => candidate.name === name);
  if (!server) usage(`--servers takes names from ${SERVERS_ALL.map((candidate) => candidate.name).join(", ")}, not ${JSON.stringify(name)}`);
  return server;
});
const rounds = positive("rounds", values.rounds);
const warm = positive("warm", values.warm);
const count = positive("count", values.count);
const perFunction = values["by-function"];

function positive(name, text) {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) usage(`--${name} takes a whole number above 0, not ${JSON.stringify(text)}`);
  return value;
}

function usage(message) {
  console.error(`bench/instructions.mjs: ${message}`);
  process.exit(2);
}

if (spawnSync("valgrind", ["--version"], { stdio: "ignore" }).status !== 0) {
  console.error("bench/instructions.mjs counts instructions with valgrind's callgrind; install valgrind first (Debian: apt-get install valgrind).");
  process.exit(2);
}

/** A directory for the dumps, and the script that starts Node.js under callgrind (`fork` runs it as the child's Node.js). */
const work = mkdtempSync(join(tmpdir(), "truss-instructions-"));
const wrapper = join(work, "node-under-callgrind.sh");
writeFileSync(
  wrapper,
  [
    "#!/bin/sh",
    // --smc-check: V8 writes and rewrites machine code in memory that callgrind must notice.
    // --perf-basic-prof: V8 writes /tmp/perf-<pid>.map, which names the JIT code callgrind sees as addresses.
    `exec valgrind --tool=callgrind --toggle-collect=uv__io_poll --smc-check=all-non-file --dump-instr=no -q --callgrind-out-file=${work}/cg.%p "${process.execPath}"${perFunction ? " --perf-basic-prof" : ""} "$@"`,
    "",
  ].join("\n"),
);
chmodSync(wrapper, 0o755);

/**
 * Instructions counted since the last dump of `pid` (callgrind zeroes its
 * counters at each dump). With `keep`, the dump's file stays, for
 * {@link byFunction}, and its path is returned too.
 */
function dump(pid, keep = false) {
  execFileSync("callgrind_control", ["--dump", String(pid)], { stdio: "ignore" });
  let total = 0;
  let kept;
  for (const file of readdirSync(work).filter((name) => name.startsWith(`cg.${pid}.`))) {
    const text = readFileSync(join(work, file), "utf8");
    const totals = /^(?:totals|summary): (\d+)/m.exec(text);
    if (!totals) throw new Error(`callgrind's dump ${file} has no totals line`);
    total += Number(totals[1]);
    if (keep) writeFileSync((kept = join(work, `kept.${file}`)), text);
    rmSync(join(work, file));
  }
  return { total, kept };
}

async function measure(server, round) {
  const child = await BenchChild.start(server.name, serverScript(server.kind), { core: 0, execPath: wrapper });
  const generator = await BenchChild.start("generator", `${BENCH_DIR}/load/generator.mjs`, { core: 1 });
  try {
    const { port } = await child.call("start", server.args, SLOW_CALL_MS);
    const clients = clientsOf({ companies: 100, perCompany: Math.ceil((warm + count) / 100) });
    const connect = async (group, batch) => {
      const result = await generator.call("connect", { group, ports: [port], clients: batch, concurrency: 20 }, SLOW_CALL_MS);
      if (result.failed > 0) throw new Error(`${server.name}: ${result.failed} connections failed: ${JSON.stringify(result.errors)}`);
      return result;
    };
    progress("instructions", `round ${round + 1}/${rounds}`, server.label, `warm-up: ${warm} connections`);
    await connect("warm", clients.slice(0, warm));
    dump(child.pid);
    progress("instructions", `round ${round + 1}/${rounds}`, server.label, `${count} connections, counted`);
    const startedAt = Date.now();
    await connect("measured", clients.slice(warm, warm + count));
    const { total: measured, kept } = dump(child.pid, perFunction);
    const measuredMs = Date.now() - startedAt;
    const functions = kept ? byFunction(kept, `/tmp/perf-${child.pid}.map`, count) : undefined;
    const idleStartedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
    const { total: idle } = dump(child.pid);
    const idlePerMs = idle / (Date.now() - idleStartedAt);
    return {
      perConnection: Math.round((measured - idlePerMs * measuredMs) / count),
      uncorrected: Math.round(measured / count),
      idlePerSecond: Math.round(idlePerMs * 1000),
      measuredSeconds: measuredMs / 1000,
      // Each function's own instructions per connection, uncorrected for the idle rate (the 200 largest).
      ...(functions && { functions: functions.slice(0, 200).map(({ name, perConnection }) => ({ name, perConnection: Math.round(perConnection) })) }),
    };
  } finally {
    await generator.stop();
    await child.stop(10_000);
    if (perFunction) rmSync(`/tmp/perf-${child.pid}.map`, { force: true });
  }
}

/** The functions whose own instructions per connection differ most between Truss and the job by hand, in round 1. */
function printFunctionGap(truss, byHand) {
  const hand = new Map(byHand.map(({ name, perConnection }) => [name, perConnection]));
  const gap = truss.map(({ name, perConnection }) => ({ name, truss: perConnection, hand: hand.get(name) ?? 0 })).sort((a, b) => b.truss - b.hand - (a.truss - a.hand));
  console.log("Functions Truss runs most above the job by hand (own instructions a connection, round 1):");
  for (const { name, truss: mine, hand: theirs } of gap.slice(0, 25)) {
    console.log(`  ${`+${(mine - theirs).toLocaleString("en")}`.padStart(8)}  ${mine.toLocaleString("en").padStart(7)} vs ${theirs.toLocaleString("en").padStart(7)}  ${name.slice(0, 100)}`);
  }
}

try {
  const results = Object.fromEntries(SERVERS.map(({ name }) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    // Each round starts one server later, as the bench's turns do.
    for (let index = 0; index < SERVERS.length; index++) {
      const server = SERVERS[(round + index) % SERVERS.length];
      const result = await measure(server, round);
      results[server.name].push(result);
      progress("instructions", `round ${round + 1}/${rounds}`, server.label, `${result.perConnection.toLocaleString("en")} instructions a connection`);
    }
  }
  const perConnection = Object.fromEntries(SERVERS.map(({ name }) => [name, median(results[name].map((result) => result.perConnection))]));
  const ratioTo = (baseline) =>
    results.truss && results[baseline] ? results.truss.map((result, round) => result.perConnection / results[baseline][round].perConnection) : null;
  const ratios = { byHand: ratioTo("by-hand"), bare: ratioTo("socketio") };
  console.log(`Instructions per connection set-up, main thread's network events (median of ${rounds} rounds; ${warm} connections warm-up, ${count} counted)`);
  for (const { name, label } of SERVERS) console.log(`  ${label.padEnd(22)} ${Math.round(perConnection[name]).toLocaleString("en").padStart(10)}   rounds: ${results[name].map((result) => result.perConnection.toLocaleString("en")).join(", ")}`);
  const ratioLine = (list) => `${median(list).toFixed(2)}x (rounds: ${list.map((ratio) => `${ratio.toFixed(2)}x`).join(", ")})`;
  if (ratios.byHand) console.log(`  Truss / by hand        ${ratioLine(ratios.byHand)}`);
  if (ratios.bare) console.log(`  Truss / bare Socket.IO ${ratioLine(ratios.bare)}`);
  if (perFunction && results.truss && results["by-hand"]) printFunctionGap(results.truss[0].functions, results["by-hand"][0].functions);
  mkdirSync(dirname(values.out), { recursive: true });
  writeFileSync(values.out, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, warm, count, rounds, trussCore: process.env.TRUSS_CORE ?? null, perConnection, ratios, results }, null, 2)}\n`);
  progress("instructions", `written to ${values.out}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
