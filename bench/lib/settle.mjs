import { sleep } from "./clock.mjs";

/**
 * Waits until the generator has received no event for `quietMs` (Truss's
 * `presence:update` burst after a mass connect, the tail of a broadcast
 * step), at most `maxMs`.
 */
export async function quiet(generator, { quietMs = 300, maxMs = 10_000 } = {}) {
  const startedAt = Date.now();
  let last = (await generator.call("stats", { latency: false })).events;
  while (Date.now() - startedAt < maxMs) {
    await sleep(quietMs);
    const events = (await generator.call("stats", { latency: false })).events;
    if (events === last) return;
    last = events;
  }
}

/**
 * Polls the generator's counters until `done(counts)` holds or nothing new
 * arrived for two polls in a row, at most `maxMs`; returns the full stats.
 */
export async function awaitDelivery(generator, done, { pollMs = 100, maxMs = 5000 } = {}) {
  const startedAt = Date.now();
  let counts = await generator.call("stats", { latency: false });
  let unchanged = 0;
  while (!done(counts) && unchanged < 2 && Date.now() - startedAt < maxMs) {
    await sleep(pollMs);
    const next = await generator.call("stats", { latency: false });
    unchanged = next.events === counts.events ? unchanged + 1 : 0;
    counts = next;
  }
  return generator.call("stats");
}
