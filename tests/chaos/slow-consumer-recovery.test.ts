import { memoryStreamStore } from "@truss/core";
import { connect, type StreamResync, type TrussClient } from "@truss/client";
import { requireRedisOrSkip, signToken, sleep, startRedisServer, startTcpProxy, waitFor, type RedisServer, type TcpProxy } from "@truss/test-utils";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { memoryBackend, redisBackend, type Backend, type NodeOptions, type Topology } from "./support/backends.js";
import { chaosFile } from "./support/chaos-file.js";

/**
 * A device that stops reading while its company gets 5,000 broadcasts a
 * second: the server cuts it as a slow consumer, it reconnects by itself,
 * and its app ends up with every broadcast once, in order, or with a coded
 * resync covering each gap, never a silent hole and never a duplicate; its
 * app hears `SLOW_CONSUMER` through `onError`. With
 * a history deep enough for the gap there is no resync at all. On Redis the
 * device sits on node B while node A broadcasts.
 */

const COMPANY = "stall-co";
const DEVICE = { userId: "site-tablet", companyId: COMPANY, deviceId: "tablet" };
const RATE_PER_SECOND = 5_000;
const KIB = 1024;
/** About 2.5 MB/s: the kernel's socket buffers fill within a second or two of the stall. */
const PAD = "p".repeat(480);
/** Broadcasting goes on this long after the device caught up, so it is seen following live traffic again. */
const LIVE_AFTER_MS = 1_000;
const DEEP_HISTORY = 200_000;

const ENGINE_OPTIONS: NodeOptions = {
  limits: { maxBufferedBytes: 256 * KIB, eventsPerSecond: 10_000 },
  recovery: { maxReplay: DEEP_HISTORY },
};

const { figures, crashes } = chaosFile("slow-consumer-recovery");

/** What the device's app was handed, in order: broadcast numbers and resyncs. */
type Handed = number | StreamResync;

/**
 * Checks the app's log against what was sent: numbers strictly increasing
 * (once, in order), the first and the last one sent both handed over, and
 * every hole preceded by a resync of the company stream. Returns the resyncs.
 */
function checkDelivery(log: readonly Handed[], sent: number): StreamResync[] {
  const resyncs: StreamResync[] = [];
  const disorder: string[] = [];
  const holes: string[] = [];
  let previous = 0;
  let resyncedSincePrevious = false;
  for (const entry of log) {
    if (typeof entry !== "number") {
      resyncs.push(entry);
      resyncedSincePrevious = true;
      continue;
    }
    if (entry <= previous) disorder.push(`${entry} after ${previous}`);
    else if (entry !== previous + 1 && !resyncedSincePrevious) holes.push(`${previous + 1}..${entry - 1}`);
    previous = Math.max(previous, entry);
    resyncedSincePrevious = false;
  }
  expect(disorder, "broadcasts handed over twice or out of order").toEqual([]);
  expect(holes, "gaps the app was never told about").toEqual([]);
  expect(resyncs.map((resync) => resync.stream)).toEqual(resyncs.map(() => "company"));
  expect(log.find((entry) => typeof entry === "number")).toBe(1);
  expect(previous).toBe(sent);
  return resyncs;
}

function recoveryCases(backend: () => Backend, label: string): void {
  let topology: Topology | undefined;
  let proxy: TcpProxy | undefined;
  let device: TrussClient | undefined;
  afterEach(async () => {
    device?.close();
    await proxy?.close();
    await topology?.close();
    device = proxy = topology = undefined;
    expect(crashes.describe()).toEqual([]);
  });

  const cases: Array<[string, NodeOptions]> = [["default history", {}]];
  // The memory store's depth is set here; the Redis store keeps its default and the case above covers it.
  if (label === "memory") cases.push(["history deeper than the gap", { wrapStores: (stores) => ({ ...stores, streams: memoryStreamStore({ size: DEEP_HISTORY }) }) }]);

  test.each(cases)("a stalled reader under a 5,000 msg/s company broadcast is cut, reconnects, and ends with every broadcast once or a coded resync (%s)", async (history, options) => {
    const section = `${label}: ${history}`;
    topology = await backend().start({ ...ENGINE_OPTIONS, ...options });
    const { a, b } = topology;
    proxy = await startTcpProxy(b.port);
    device = connect(proxy.url, {
      token: signToken(DEVICE),
      deviceId: DEVICE.deviceId,
      reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
      socketOptions: { transports: ["websocket"] },
    });
    const log: Handed[] = [];
    let received = 0;
    device.on("chaos:tick", (data) => {
      log.push((data as { seq: number }).seq);
      received += 1;
    });
    device.onResync((resync) => log.push(resync));
    const errors: string[] = [];
    device.onError((error) => errors.push(error.code));
    await waitFor(() => device!.status === "connected", { message: "the device to connect" });

    let sent = 0;
    let publishing = true;
    const startedAt = Date.now();
    const publisher = (async () => {
      while (publishing) {
        const due = Math.floor(((Date.now() - startedAt) * RATE_PER_SECOND) / 1000);
        const batch: Array<Promise<unknown>> = [];
        while (sent < due) batch.push(a.engine.toCompany(COMPANY).emit("chaos:tick", { seq: (sent += 1), pad: PAD }));
        await Promise.all(batch);
        await sleep(5);
      }
    })();

    try {
      await waitFor(() => received >= 1_000, { timeoutMs: 10_000, message: "live broadcasts before the stall" });
      proxy.stallDownstream();
      const stalledAt = Date.now();
      await waitFor(() => b.engine.io!.of("/").sockets.size === 0, { timeoutMs: 30_000, intervalMs: 20, message: "the server to cut the stalled device" });
      const cutAt = Date.now();
      proxy.resumeDownstream();
      const sentAtResume = sent;
      // Catching up means replaying the backlog while 5,000 more arrive each second: on a
      // loaded 2-core machine that has taken over 20 s, so the bound is generous.
      await waitFor(() => device!.status === "connected" && !device!.recovering && log.some((entry) => typeof entry === "number" && entry > sentAtResume), {
        timeoutMs: 40_000,
        message: "the device back and caught up",
      });
      const caughtUpAt = Date.now();
      await sleep(LIVE_AFTER_MS);
      publishing = false;
      await publisher;
      const stoppedAt = Date.now();
      await waitFor(() => log.at(-1) === sent, { timeoutMs: 15_000, message: `broadcast ${sent}, the last one (have ${String(log.at(-1))})` });
      await sleep(200);

      // A device still behind on the burst that follows its return may be cut again: each time it must come back.
      const cuts = Number(/^truss_slow_consumers_total (\d+)$/m.exec(await b.engine.metrics())?.[1] ?? 0);
      figures.set(section, "sent", sent);
      figures.set(section, "sent per second", Math.round((sent * 1000) / (stoppedAt - startedAt)));
      figures.set(section, "handed to the app", received);
      figures.set(section, "cut after the stall ms", cutAt - stalledAt);
      figures.set(section, "caught up after the cut ms", caughtUpAt - cutAt);
      figures.set(section, "slow-consumer cuts", cuts);
      figures.set(section, "resyncs", log.flatMap((entry) => (typeof entry === "number" ? [] : [entry.reason])));

      figures.set(section, "told SLOW_CONSUMER", errors.filter((code) => code === "SLOW_CONSUMER").length);

      const resyncs = checkDelivery(log, sent);
      expect(cuts).toBeGreaterThanOrEqual(1);
      // Read before the cut, or told on the next connection when the stalled reader never read it.
      expect(errors, "the app was told why it was cut").toContain("SLOW_CONSUMER");
      expect(device.status).toBe("connected");
      if (history === "history deeper than the gap") {
        expect(resyncs).toEqual([]);
        expect(received).toBe(sent);
      } else {
        for (const resync of resyncs) expect(["HISTORY_TRIMMED", "HISTORY_EXPIRED", "TOO_MANY_MISSED"]).toContain(resync.reason);
      }
    } finally {
      publishing = false;
      await publisher;
    }
  }, 120_000);
}

describe("on the in-memory stores", () => {
  recoveryCases(() => memoryBackend, "memory");
});

describe.runIf(requireRedisOrSkip("chaos slow-consumer recovery on Redis"))("on Redis, two nodes", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  recoveryCases(() => redisBackend(() => redis), "redis");
});
