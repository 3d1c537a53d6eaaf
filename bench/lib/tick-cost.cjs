/**
 * A preload for the bench's processes that times every `process.nextTick`
 * call and prints, when the process exits, how many it made and what one
 * cost on average (stderr, one line per process, named by its script).
 * Finding 26 of docs/benchmarks.md: in some Truss server processes a tick
 * cost four times what it cost in the others, for the life of the process.
 *
 *   NODE_OPTIONS="--require ./bench/lib/tick-cost.cjs" node --expose-gc bench/run.mjs --only documents
 *
 * The timing itself adds about 100 ns a call to every process alike; compare
 * processes of one run, not a run with and without it.
 */
"use strict";
const { writeSync } = require("node:fs");

const nextTick = process.nextTick;
const script = (process.argv[1] ?? "").split("/").pop();
let calls = 0;
let nanoseconds = 0n;

process.nextTick = function timedNextTick(...args) {
  const start = process.hrtime.bigint();
  nextTick.apply(process, args);
  nanoseconds += process.hrtime.bigint() - start;
  calls++;
};

process.on("exit", () => {
  if (calls === 0) return;
  writeSync(2, `[tick-cost] ${script} (pid ${process.pid}): ${calls} nextTick calls, ${(Number(nanoseconds) / calls).toFixed(0)} ns each\n`);
});
