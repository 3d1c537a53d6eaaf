#!/usr/bin/env node
/**
 * What an append costs the in-memory inbox and stream stores once the log
 * is at its cap (1,000 messages per user, 1,000 entries per stream, the
 * defaults), where a busy user's inbox and a busy company's stream stay:
 * every append then drops the oldest. Against the same log by hand in the
 * same run: an array of `{ id, json }` records, `push` then `shift`, ids
 * `<ms>-<seq>`, the data kept as its JSON text. What Truss adds on top
 * (company quotas, TTLs, idempotency keys, the checks on ids and data) is
 * in the ratio.
 *
 *   node bench/store-appends.mjs                    3 rounds of 200,000 appends each
 *   node bench/store-appends.mjs --rounds 5 --appends 500000
 *   TRUSS_CORE=/path/to/core/dist/index.js node bench/store-appends.mjs
 *
 * In-process and single-threaded; a few seconds a round.
 */
import { parseArgs } from "node:util";
import { median } from "./lib/table.mjs";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    appends: { type: "string", default: "200000" },
  },
});
const rounds = Number(values.rounds);
const appends = Number(values.appends);
if (!(Number.isInteger(rounds) && rounds > 0 && Number.isInteger(appends) && appends >= 2000)) {
  console.error("usage: node bench/store-appends.mjs [--rounds N ≥ 1] [--appends N ≥ 2000]");
  process.exit(2);
}

const { memoryInboxStore, memoryStreamStore } = await import(process.env.TRUSS_CORE ?? "@truss/core");
const CAP = 1000;

/** The same bounded log by hand: what a server keeps to replay a user's messages or a stream's entries. */
function byHandLog() {
  const log = [];
  let lastMs = 0;
  let seq = -1;
  return (event, data) => {
    const ms = Math.max(Date.now(), lastMs);
    seq = ms === lastMs ? seq + 1 : 0;
    lastMs = ms;
    const record = { id: `${ms}-${seq}`, event, json: JSON.stringify(data), ts: ms };
    log.push(record);
    if (log.length > CAP) log.shift();
    return record;
  };
}

const jobs = {
  "by hand": () => byHandLog(),
  "inbox store": () => {
    const inbox = memoryInboxStore({ maxLength: CAP });
    const user = { companyId: "acme", userId: "ann" };
    return (event, data) => inbox.append(user, event, data);
  },
  "stream store": () => {
    const streams = memoryStreamStore({ size: CAP });
    const key = { companyId: "acme", stream: "company" };
    return (event, data) => streams.append(key, event, data);
  },
};

/** Nanoseconds per append, the log filled to its cap first (unmeasured). */
async function measure(make) {
  const append = make();
  for (let index = 0; index < 2 * CAP; index++) await append("project:updated", { id: "p1", n: index });
  const start = process.hrtime.bigint();
  for (let index = 0; index < appends; index++) await append("project:updated", { id: "p1", n: index });
  return Number(process.hrtime.bigint() - start) / appends;
}

const results = Object.fromEntries(Object.keys(jobs).map((name) => [name, []]));
for (let round = 1; round <= rounds; round++) {
  // In turns, so the host's drift lands on all of them alike.
  for (const [name, make] of Object.entries(jobs)) results[name].push(await measure(make));
  console.error(`[round ${round}/${rounds}] ${Object.entries(results).map(([name, ns]) => `${name} ${Math.round(ns.at(-1))} ns`).join(" · ")}`);
}

const byHand = median(results["by hand"]);
console.log(`Append at the cap (${CAP}), ns per append, median of ${rounds} rounds of ${appends.toLocaleString("en-US")}:`);
for (const [name, ns] of Object.entries(results)) {
  const value = median(ns);
  console.log(`  ${name.padEnd(14)} ${String(Math.round(value)).padStart(6)} ns   ${(value / byHand).toFixed(2)}x by hand`);
}
