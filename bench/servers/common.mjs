/**
 * What the three servers under test share: an HTTP server on a free
 * loopback port, the paced broadcast and send loops, memory reports and the
 * payloads, so each server differs only in how it does the job.
 */
import { createServer } from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { now } from "../lib/clock.mjs";

/** Starts an HTTP server on 127.0.0.1 and a free port. */
export async function listen(server = createServer()) {
  server.maxConnections = Infinity;
  await new Promise((resolve) => server.listen({ port: 0, host: "127.0.0.1", backlog: 4096 }, resolve));
  return { server, port: server.address().port };
}

/**
 * Heap and RSS after full collections (the process runs with `--expose-gc`),
 * with a pause between them so V8 finishes sweeping and can hand empty pages
 * back before RSS is read.
 */
export async function memoryReport() {
  for (let round = 0; round < 3; round++) {
    globalThis.gc?.();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
  return { rss, heapUsed, heapTotal, external, arrayBuffers };
}

/**
 * Calls `send(i, scheduledAt)` `rate` times a second for `durationMs`, on a
 * 1 ms timer. Each message carries the time it was *scheduled* for, not the
 * time it went out, so a server that falls behind shows it in the latency
 * (no coordinated omission). One tick sends at most `maxBurst` messages so
 * an overloaded server still serves I/O; whatever is not sent by the end of
 * the window is counted as missed.
 */
export function pace({ rate, durationMs, send }) {
  const planned = Math.round((rate * durationMs) / 1000);
  const interval = 1000 / rate;
  const maxBurst = Math.max(1, Math.ceil(rate / 100));
  const startedAt = now();
  const endsAt = startedAt + durationMs;
  let sent = 0;
  // The server's own view: how late its event loop ran during the window.
  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  loopDelay.enable();

  return new Promise((resolve) => {
    const tick = () => {
      const at = now();
      const due = Math.min(planned, Math.floor((at - startedAt) / interval) + 1, sent + maxBurst);
      while (sent < due) {
        send(sent, startedAt + sent * interval);
        sent += 1;
      }
      if (sent < planned && at < endsAt) {
        setTimeout(tick, 1);
        return;
      }
      loopDelay.disable();
      const ms = (ns) => Math.round(ns / 1e4) / 100;
      resolve({
        planned,
        sent,
        startedAt,
        elapsedMs: now() - startedAt,
        eventLoopDelay: { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max) },
      });
    };
    tick();
  });
}

/** Runs `task(i)` for i in 0..count-1, `concurrency` at a time. */
export async function runBounded(count, concurrency, task) {
  let next = 0;
  let failed = 0;
  const lane = async () => {
    while (next < count) {
      const index = next++;
      try {
        await task(index);
      } catch {
        failed += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  return failed;
}

/** The company broadcast of the fan-out scenarios: a typical ERP update, ~200 bytes on the wire. */
export function projectUpdate(t, seq, companyId) {
  return {
    t,
    seq,
    companyId,
    project: {
      id: `p-${seq % 500}`,
      name: "Tower B — level 4 slab",
      status: "in_progress",
      percentComplete: seq % 100,
      updatedBy: "u-site-lead",
    },
  };
}

/**
 * The authorization rule of the topic scenario, which both servers apply to
 * `project:<id>` subscriptions (Truss in its `authorize` policy, plain
 * Socket.IO in its `topic:subscribe` handler): the token's roles must hold
 * `member` and the grant `project:<id>`.
 */
export const canSeeProject = (roles, projectId) => roles.includes("member") && roles.includes(`project:${projectId}`);

/** The user message of the inbox scenarios. */
export function expenseApproved(t, seq) {
  return { t, seq, expenseId: `e-${seq}`, amount: 1249.5, currency: "EUR", approvedBy: "u-controller" };
}

/** Tracks promises started by an open-loop sender, to report how many settled and how. */
export class SendTracker {
  constructor() {
    this.stored = 0;
    this.failed = 0;
    this.inFlight = new Set();
    this.maxInFlight = 0;
  }

  track(promise) {
    const tracked = promise.then(
      () => {
        this.stored += 1;
      },
      () => {
        this.failed += 1;
      },
    );
    this.inFlight.add(tracked);
    if (this.inFlight.size > this.maxInFlight) this.maxInFlight = this.inFlight.size;
    void tracked.finally(() => this.inFlight.delete(tracked));
  }

  async settle() {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    return { stored: this.stored, failed: this.failed, maxInFlight: this.maxInFlight };
  }
}
