/**
 * Scenario: scoped presence in one document, on one Truss server (its own
 * process, in-memory stores, no `authorize` policy, so a watched document's
 * presence is open to its watchers).
 *
 * 1,000 connections of one company watch one document. With presence off
 * they only watch it: the baseline, measured first on the same server and
 * sockets, for memory after full GCs and for server CPU over a window of
 * the same length. Then every connection joins the document's presence with
 * a small state and changes it 5 times a second for the window (the changes
 * spread evenly over the connections; each goes out to the other 999;
 * Truss's coalescing, at most about 10 a second per connection, cuts in only
 * when a connection's changes reach the server bunched up). The scope's
 * changes go out in one `presence:changes` batch per 100 ms window, to the
 * whole scope. Deliveries are counted at the generator: every update of
 * another member a member hears, and the frames that carried them.
 *
 * At this rate the scope is offered about 5 million deliveries a second; in
 * batches that is about 10 frames a second per member (more only when a
 * window's changes pass `maxBatchBytes`, 64 KiB: here about 500 changes of
 * some 170 bytes a window, so two frames).
 *
 * - Server CPU per delivered update: the CPU of the update window, less
 *   what the same sockets used while only watching, over the updates
 *   delivered in the window (what is still queued at its end is left out of
 *   both).
 * - Memory per member: heap and RSS after full GCs with every connection a
 *   member, less the same with presence off, over the members; and per
 *   connection, presence on against off.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { sleep } from "../lib/clock.mjs";
import { BenchChild } from "../lib/processes.mjs";

const COMPANY = "c-presence";
const DOCUMENT = { type: "project", id: "p0" };
/** The generator's core (the server is on core 0, see lib/context.mjs). */
const GENERATOR_CORE = 1;

function plan(quick) {
  return quick ? { members: 100, rate: 5, windowMs: 1500 } : { members: 1000, rate: 5, windowMs: 5000 };
}

async function generator(ctx) {
  const child = await BenchChild.start("generator", fileURLToPath(new URL("../load/presence.mjs", import.meta.url)), { core: GENERATOR_CORE });
  ctx.children.add(child);
  return child;
}

const perMember = (bytes, members) => Math.round(bytes / members);

/** Clock ticks a second of `/proc/<pid>/stat`'s CPU times. */
let ticksPerSecond;

/**
 * A process's CPU time so far (user + system, µs) as Linux reports it, read
 * without asking the process: a server far behind answers its `cpu` command
 * only once it has worked through what its sockets queued before it. `null`
 * without `/proc`.
 */
function cpuOfProcess(pid) {
  try {
    // The command name (field 2) may hold spaces; the fields after its ")" start at the state (field 3).
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    ticksPerSecond ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" })) || 100;
    return ((Number(fields[11]) + Number(fields[12])) / ticksPerSecond) * 1e6;
  } catch {
    return null;
  }
}

/** The server's CPU time: from `/proc` where there is one, else its `cpu` command. */
const serverCpu = async (server) => cpuOfProcess(server.pid) ?? (await server.call("cpu"));

export default {
  name: "presence",
  title: "Scoped presence: 1,000 members of one document, each changing its state 5 times a second, against the same watchers with presence off",
  async run(ctx) {
    const { members, rate, windowMs } = plan(ctx.quick);
    const server = await ctx.server("truss", {}, { name: "truss-presence" });
    await server.call("seedDocuments", { companyId: COMPANY, docs: [DOCUMENT.id], fields: ["notes"] });
    const load = await generator(ctx);
    const empty = await server.call("memory");

    const specs = Array.from({ length: members }, (_, index) => ({ userId: `m${index}`, companyId: COMPANY }));
    const connected = await load.call("connect", { port: server.port, specs });
    if (connected.failed > 0) throw new Error(`${connected.failed} of ${members} connections failed`);
    const watched = await load.call("watch", { document: DOCUMENT });
    if (Object.keys(watched.refused).length > 0) throw new Error(`document:watch refused: ${JSON.stringify(watched.refused)}`);
    await load.call("quiet", { quietMs: ctx.quick ? 100 : 300 });

    // Presence off: the same sockets watching the same document.
    const off = await server.call("memory");
    // The server is idle here, so its own (µs-precise) reading answers at once.
    const idleStart = performance.now();
    const cpuBefore = await server.call("cpu");
    await sleep(windowMs);
    const idleCpu = (await server.call("cpu")) - cpuBefore;
    const idleMs = performance.now() - idleStart;
    ctx.step("presence off", `${members} watchers: heap ${perMember(off.heapUsed - empty.heapUsed, members)} B, RSS ${perMember(off.rss - empty.rss, members)} B per connection; ${Math.round(idleCpu / 1000)} ms CPU in ${windowMs / 1000} s`);

    const joined = await load.call("join", { document: DOCUMENT });
    if (Object.keys(joined.refused).length > 0) throw new Error(`presence:join refused: ${JSON.stringify(joined.refused)}`);
    await load.call("quiet", { quietMs: ctx.quick ? 100 : 300, maxMs: 60_000 });
    const on = await server.call("memory");
    const memberHeap = perMember(on.heapUsed - off.heapUsed, members);
    const memberRss = perMember(on.rss - off.rss, members);
    ctx.step("presence on", `${members} members joined in ${joined.elapsedMs} ms: ${memberHeap} B heap, ${memberRss} B RSS per member`);

    await load.call("reset");
    // Counted over the window alone: the generator's counts and the server's CPU are read the moment the
    // last change has been sent; what the server still has queued then is left out of both.
    const { sent, heard, cpuMicros, elapsedMs } = await ctx.profiled(server, "presence", async () => {
      const startedAt = performance.now();
      const cpuStart = await serverCpu(server);
      const sent = await load.call("update", { document: DOCUMENT, rate, durationMs: windowMs });
      const heard = await load.call("stats");
      const cpuMicros = (await serverCpu(server)) - cpuStart;
      return { sent, heard, cpuMicros, elapsedMs: performance.now() - startedAt };
    });
    // Then everything the server still had queued: how late the last changes arrived.
    await load.call("quiet", { quietMs: ctx.quick ? 100 : 300, maxMs: 60_000 });
    const drained = await load.call("stats");
    await load.call("close");
    if (heard.open < members) throw new Error(`${members - heard.open} members were disconnected during the updates`);
    const offered = sent.sent * (members - 1);
    const netCpu = cpuMicros - (idleCpu * elapsedMs) / idleMs;
    const cpuPerDelivered = Math.round((netCpu / heard.updates) * 100) / 100;
    const deliveredPerSecond = Math.round(heard.updates / (elapsedMs / 1000));
    const framesPerMember = Math.round((heard.frames / members / (elapsedMs / 1000)) * 10) / 10;
    ctx.step(
      "presence on",
      `${sent.sent} updates sent in ${Math.round(elapsedMs)} ms, ${heard.carets} of them heard; ${heard.updates} of ${offered} deliveries (${deliveredPerSecond}/s), ` +
        `${cpuPerDelivered} µs CPU each, p50 ${heard.latency.p50} ms, p99 ${heard.latency.p99} ms; ` +
        `${framesPerMember} presence frames a second per member (at most ${heard.mostFrames} in ${Math.round(elapsedMs)} ms)`,
    );
    ctx.step(
      "presence on",
      `after the window: ${drained.carets} of ${sent.sent} updates heard, ${drained.updates} of ${offered} deliveries; p50 ${drained.latency.p50} ms, p99 ${drained.latency.p99} ms`,
    );

    const perConnection = (report) => ({ heap: perMember(report.heapUsed - empty.heapUsed, members), rss: perMember(report.rss - empty.rss, members) });
    const connectionOn = perConnection(on);
    const connectionOff = perConnection(off);
    return {
      rows: [
        { metric: `server CPU per delivered presence update (${members} members, ${rate}/s each; no baseline)`, unit: "µs", better: "lower", truss: cpuPerDelivered, baseline: null },
        { metric: "presence updates delivered per second, one server core (no baseline)", unit: "/s", better: "higher", truss: deliveredPerSecond, baseline: null },
        { metric: "presence frames per member per second, one scope (no baseline)", unit: "/s", better: "lower", truss: framesPerMember, baseline: null },
        {
          metric: `server CPU per second, members updating ${rate}/s (baseline: the same watchers, presence off)`,
          unit: "ms",
          better: "lower",
          truss: Math.round(cpuMicros / elapsedMs),
          baseline: Math.round((idleCpu / idleMs) * 100) / 100,
        },
        { metric: "heap per connection, a member of the document's presence (baseline: presence off)", unit: "B", better: "lower", truss: connectionOn.heap, baseline: connectionOff.heap },
        { metric: "RSS per connection, a member of the document's presence (baseline: presence off)", unit: "B", better: "lower", truss: connectionOn.rss, baseline: connectionOff.rss },
      ],
      details: {
        members,
        rate,
        windowMs,
        memory: { empty, off, on, perMember: { heap: memberHeap, rss: memberRss }, perConnection: { on: connectionOn, off: connectionOff } },
        cpu: { idleMicros: idleCpu, idleMs: Math.round(idleMs), updateMicros: Math.round(cpuMicros), updateMs: Math.round(elapsedMs), perDelivered: cpuPerDelivered },
        updates: {
          ...sent,
          heard: heard.carets,
          offeredDeliveries: offered,
          delivered: heard.updates,
          deliveredPerSecond,
          deliveredFraction: Math.round((heard.updates / offered) * 1000) / 1000,
          latency: heard.latency,
          frames: { total: heard.frames, perMemberPerSecond: framesPerMember, mostOneMember: heard.mostFrames },
          drained: { heard: drained.carets, delivered: drained.updates, latency: drained.latency },
        },
        joins: { elapsedMs: joined.elapsedMs },
      },
    };
  },
};
