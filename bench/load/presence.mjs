/**
 * The load generator of the `presence` scenario: one process holding every
 * member of one document scope, driven by the runner over IPC. It opens the
 * connections, watches the document, joins its presence, then has every
 * member change its state at a fixed rate, and counts the `presence:changes`
 * frames each member hears and the updates of the others they carry, with
 * their delay from the time the change was scheduled.
 *
 * Every member hears the same batch: it is parsed and counted once (the
 * last batches parsed are kept, known by their length and ends); each member
 * then adds its counts, less its own change, and one member in ten records
 * the delay of each update, which is the same for every member of a frame
 * that reached them together.
 */
import { serveCommands } from "../lib/commands.mjs";
import { now, sleep } from "../lib/clock.mjs";
import { Histogram } from "../lib/histogram.mjs";
import { signToken } from "../lib/tokens.mjs";
import { socketUrl, stringField, WireClient } from "./wire-client.mjs";

let clients = [];
let stats = freshStats();

function freshStats() {
  // `carets`: the distinct updates heard (each carries its send number), so updates the server coalesced away show.
  // `frames`: `presence:changes` frames heard, all members together; `mostFrames`: the most one member heard.
  return { events: 0, frames: 0, framesOf: new Map(), updates: 0, carets: new Set(), joins: 0, leaves: 0, other: {}, latency: new Histogram() };
}

/** Batches parsed lately, by {@link batchKey}. */
const parsed = new Map();
const PARSED_KEPT = 64;

/** A batch's key: the same frame reaches every member as its own string, and hashing the whole of it each time would cost more than parsing. */
const batchKey = (packet) => `${packet.length}:${packet.slice(0, 200)}:${packet.slice(-200)}`;

/** Members whose delays are recorded: one in this many. */
const LATENCY_SAMPLE = 10;

/** A batch, counted: its changes by kind, each member's change, and each update's member and scheduled time. */
function batchOf(packet) {
  const key = batchKey(packet);
  let batch = parsed.get(key);
  if (!batch) {
    const [, { changes }] = JSON.parse(packet.slice(packet.indexOf("[")));
    batch = { counts: { joined: 0, updated: 0, left: 0 }, byMember: new Map(), times: [] };
    for (const { change, member } of changes) {
      batch.counts[change] += 1;
      batch.byMember.set(member.memberId, change);
      if (change === "updated") {
        stats.carets.add(member.state?.caret);
        batch.times.push([member.memberId, member.state?.t]);
      }
    }
    parsed.set(key, batch);
    if (parsed.size > PARSED_KEPT) parsed.delete(parsed.keys().next().value);
  }
  return batch;
}

function onEvent(client, event, packet) {
  stats.events += 1;
  if (event !== "presence:changes") {
    stats.other[event] = (stats.other[event] ?? 0) + 1;
    return;
  }
  stats.frames += 1;
  stats.framesOf.set(client, (stats.framesOf.get(client) ?? 0) + 1);
  client.memberId ??= stringField(client.connectAnswer ?? "", '"sid":"');
  const { counts, byMember, times } = batchOf(packet);
  // A batch goes to the whole scope, the member's own change included; that is no delivery to itself.
  const own = byMember.get(client.memberId);
  stats.updates += counts.updated - (own === "updated" ? 1 : 0);
  stats.joins += counts.joined - (own === "joined" ? 1 : 0);
  stats.leaves += counts.left - (own === "left" ? 1 : 0);
  if (client.sampled) {
    const at = now();
    for (const [memberId, t] of times) if (memberId !== client.memberId) stats.latency.record(at - t);
  }
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
          client.sampled = clients.length % LATENCY_SAMPLE === 0;
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

  stats: () => ({
    ...stats,
    framesOf: undefined,
    mostFrames: Math.max(0, ...stats.framesOf.values()),
    carets: stats.carets.size,
    latency: stats.latency.summary(),
    open: clients.filter((client) => client.connected).length,
  }),

  async close() {
    await Promise.all(clients.map((client) => client.close()));
    const closed = clients.length;
    clients = [];
    return { closed };
  },
});
