/**
 * The load generator of the `presence` scenario: one process holding every
 * member of one document scope, driven by the runner over IPC. It opens the
 * connections, watches the document, joins its presence, then has every
 * member change its state at a fixed rate, and counts the `presence:changed`
 * updates each member hears from the others, with their delay from the
 * time the change was scheduled.
 */
import { serveCommands } from "../lib/commands.mjs";
import { now, sleep } from "../lib/clock.mjs";
import { Histogram } from "../lib/histogram.mjs";
import { signToken } from "../lib/tokens.mjs";
import { numberField, socketUrl, WireClient } from "./wire-client.mjs";

let clients = [];
let stats = freshStats();

function freshStats() {
  // `carets`: the distinct updates heard (each carries its send number), so updates the server coalesced away show.
  return { events: 0, updates: 0, carets: new Set(), joins: 0, leaves: 0, other: {}, latency: new Histogram() };
}

function onEvent(client, event, packet) {
  stats.events += 1;
  if (event !== "presence:changed") {
    stats.other[event] = (stats.other[event] ?? 0) + 1;
    return;
  }
  if (packet.includes('"change":"updated"')) {
    stats.updates += 1;
    stats.carets.add(numberField(packet, '"caret":'));
    stats.latency.record(now() - numberField(packet, '"t":'));
  } else if (packet.includes('"change":"joined"')) stats.joins += 1;
  else stats.leaves += 1;
}

/** Runs `task(client)` for every client, `concurrency` at a time; resolves with the answers that were not `ok`, by code. */
async function everyClient(task, concurrency = 100) {
  const refused = {};
  let next = 0;
  const lane = async () => {
    while (next < clients.length) {
      const answer = await task(clients[next++]);
      if (!answer?.ok) {
        const code = answer?.error?.code ?? "NO_ANSWER";
        refused[code] = (refused[code] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, clients.length) }, lane));
  return refused;
}

serveCommands({
  /** Opens one connection per spec (`{ userId, companyId }`), `concurrency` at a time. */
  async connect({ port, specs, concurrency = 100 }) {
    const tokens = specs.map((spec) => signToken(spec));
    const startedAt = now();
    let failed = 0;
    let next = 0;
    const lane = async () => {
      while (next < specs.length) {
        const index = next++;
        const client = new WireClient({ url: socketUrl(port), auth: { token: tokens[index], deviceId: `d-${specs[index].userId}` }, onEvent });
        try {
          await client.connect();
          clients.push(client);
        } catch {
          failed += 1;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, specs.length) }, lane));
    return { connected: clients.length, failed, elapsedMs: Math.round(now() - startedAt) };
  },

  /** Every client watches the document. */
  watch: async ({ document }) => ({ refused: await everyClient((client) => client.request("document:watch", document)) }),

  /** Every client joins the document's presence with a small state. */
  async join({ document }) {
    const startedAt = now();
    const refused = await everyClient((client) => client.request("presence:join", { scope: document, state: { field: null, caret: 0, t: 0 } }));
    return { refused, elapsedMs: Math.round(now() - startedAt) };
  },

  /**
   * Every client sends `presence:set` `rate` times a second for
   * `durationMs`, spread evenly over the clients (client `i` sends every
   * `1000 / rate` ms, offset by its place), each state carrying the time it
   * was scheduled for; a 1 ms timer paces them, so a generator that falls
   * behind catches up rather than sending less.
   */
  update({ document, rate, durationMs }) {
    const interval = 1000 / (rate * clients.length);
    const planned = Math.round((rate * clients.length * durationMs) / 1000);
    const startedAt = now();
    let sent = 0;
    return new Promise((resolve) => {
      const tick = () => {
        const due = Math.min(planned, Math.floor((now() - startedAt) / interval) + 1);
        while (sent < due) {
          const t = startedAt + sent * interval;
          clients[sent % clients.length].emit("presence:set", { scope: document, state: { field: "notes", caret: sent, t } });
          sent += 1;
        }
        if (sent < planned) setTimeout(tick, 1);
        else resolve({ planned, sent, elapsedMs: Math.round(now() - startedAt) });
      };
      tick();
    });
  },

  /** Waits until nothing arrived for `quietMs`, at most `maxMs`. */
  async quiet({ quietMs = 300, maxMs = 20_000 }) {
    const startedAt = now();
    let last = stats.events;
    while (now() - startedAt < maxMs) {
      await sleep(quietMs);
      if (stats.events === last) return { waitedMs: Math.round(now() - startedAt) };
      last = stats.events;
    }
    return { waitedMs: Math.round(now() - startedAt), stillArriving: true };
  },

  reset() {
    stats = freshStats();
    return true;
  },

  stats: () => ({ ...stats, carets: stats.carets.size, latency: stats.latency.summary(), open: clients.filter((client) => client.connected).length }),

  async close() {
    await Promise.all(clients.map((client) => client.close()));
    const closed = clients.length;
    clients = [];
    return { closed };
  },
});
