/**
 * The load generator: one process holding every bench client, driven by the
 * runner over IPC. It opens connections with bounded concurrency, records
 * delivery latency from the send time each server stamps into its messages,
 * acknowledges inbox messages like a device would, and runs the document
 * writers, and cuts and reconnects devices that then catch up on what they
 * missed. Servers and generator share a clock (see lib/clock.mjs).
 */
import { randomBytes } from "node:crypto";
import { serveCommands } from "../lib/commands.mjs";
import { now, sleep } from "../lib/clock.mjs";
import { Histogram } from "../lib/histogram.mjs";
import { signToken } from "../lib/tokens.mjs";
import { SocketIoSession, TrussStreamPosition } from "./recovery.mjs";
import { numberField, socketUrl, stringField, WireClient } from "./wire-client.mjs";

/** How long a device holds inbox ids before acknowledging them in one `inbox:ack`. */
const ACK_DELAY_MS = 20;
/** The most ids one `inbox:ack` carries. */
const ACK_BATCH = 200;
/** How a device keeps its place in the broadcasts, by the `recovery` a group is connected with. */
const RECOVERY = { truss: TrussStreamPosition, socketio: SocketIoSession };

const groups = new Map();
const tokens = new Map();
/** Per group, what its `write` slices added up to (`cumulative: true`). */
const writeTotals = new Map();
/** Per group, what its `connect` slices added up to (`cumulative: true`). */
const connectTotals = new Map();
let stats = freshStats();

function freshStats() {
  return {
    startedAt: now(),
    firstAt: 0,
    lastAt: 0,
    /** Every event received, whatever its name. */
    events: 0,
    /** Application broadcasts (`project:updated`) received, by the node the client is on. */
    delivered: [0, 0],
    latency: [new Histogram(), new Histogram()],
    inbox: { received: 0, duplicates: 0, acks: 0, ackErrors: 0, latency: new Histogram() },
    documentBroadcasts: 0,
    other: {},
  };
}

function tokenFor(spec) {
  const key = `${spec.userId}\u0000${spec.companyId}\u0000${spec.roles?.join(" ") ?? ""}`;
  let token = tokens.get(key);
  if (!token) tokens.set(key, (token = signToken(spec)));
  return token;
}

function compareIds(a, b) {
  const [aMs, aSeq] = a.split("-").map(Number);
  const [bMs, bSeq] = b.split("-").map(Number);
  return aMs - bMs || aSeq - bSeq;
}

function onEvent(client, event, packet) {
  const at = now();
  if (stats.firstAt === 0) stats.firstAt = at;
  stats.lastAt = at;
  stats.events += 1;
  if (event === "project:updated") {
    stats.delivered[client.node] += 1;
    stats.latency[client.node].record(at - numberField(packet, '"t":'));
    client.recovery?.observe(packet);
  } else if (event === "inbox:message") {
    onInboxMessage(client, packet, at);
  } else if (event === "document:updated") {
    stats.documentBroadcasts += 1;
    const known = client.state?.known;
    if (known) {
      const id = stringField(packet, '"id":"');
      const version = numberField(packet, '"version":');
      if ((known.get(id) ?? 0) < version) known.set(id, version);
    }
  } else {
    stats.other[event] = (stats.other[event] ?? 0) + 1;
  }
}

function onInboxMessage(client, packet, at) {
  const inbox = client.inbox;
  const id = stringField(packet, '"id":"');
  if (inbox.lastId !== null && compareIds(id, inbox.lastId) <= 0) {
    stats.inbox.duplicates += 1;
    return;
  }
  inbox.lastId = id;
  inbox.received += 1;
  stats.inbox.received += 1;
  stats.inbox.latency.record(at - numberField(packet, '"t":'));
  inbox.pending.push(id);
  if (inbox.pending.length >= ACK_BATCH) flushAcks(client);
  else inbox.timer ??= setTimeout(() => flushAcks(client), ACK_DELAY_MS);
  if (inbox.received === inbox.expected) inbox.onDrained?.();
}

function flushAcks(client) {
  const inbox = client.inbox;
  clearTimeout(inbox.timer);
  inbox.timer = undefined;
  if (inbox.pending.length === 0 || !client.connected) return;
  const ids = inbox.pending;
  inbox.pending = [];
  client.request("inbox:ack", { ids }).then(
    (ack) => (ack?.ok ? (stats.inbox.acks += 1) : (stats.inbox.ackErrors += 1)),
    () => (stats.inbox.ackErrors += 1),
  );
}

function makeClient(spec, index, ports, recovery) {
  const client = new WireClient({
    url: socketUrl(ports[index % ports.length]),
    auth: { token: tokenFor(spec), deviceId: spec.deviceId ?? `d-${spec.userId}` },
    onEvent,
  });
  client.node = index % ports.length;
  client.spec = spec;
  client.inbox = { received: 0, expected: spec.expectInbox ?? -1, lastId: null, pending: [], timer: undefined, onDrained: null };
  client.recovery = recovery ? new RECOVERY[recovery]() : null;
  return client;
}

/**
 * Opens `specs.length` connections, `concurrency` at a time. Tokens are signed
 * before the clock starts: the server's verification is measured, not ours.
 */
async function connectAll(specs, ports, concurrency, onClient, recovery) {
  for (const spec of specs) tokenFor(spec);
  const clients = [];
  const latency = new Histogram();
  const errors = {};
  let next = 0;
  let failed = 0;
  const startedAt = now();
  const lane = async () => {
    while (next < specs.length) {
      const index = next++;
      const client = makeClient(specs[index], index, ports, recovery);
      onClient?.(client);
      const t0 = now();
      try {
        await client.connect();
        latency.record(now() - t0);
        client.recovery?.connected?.(client);
        clients.push(client);
      } catch (error) {
        failed += 1;
        const key = String(error.message).slice(0, 120);
        errors[key] = (errors[key] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, specs.length) }, lane));
  const elapsedMs = now() - startedAt;
  return {
    clients,
    histogram: latency,
    result: {
      connected: clients.length,
      failed,
      errors,
      elapsedMs: Math.round(elapsedMs),
      perSecond: Math.round((clients.length / elapsedMs) * 1000),
      latency: latency.summary(),
    },
  };
}

function group(name) {
  const clients = groups.get(name);
  if (!clients) throw new Error(`no client group "${name}"`);
  return clients;
}

/** One document writer: update, wait for the ack, repeat until the deadline. */
async function runWriter(client, { deadline, docs, fields, outcome, latency, mutationIds }) {
  const known = client.state.known;
  while (now() < deadline && client.connected) {
    const id = docs[(Math.random() * docs.length) | 0];
    const field = fields[(Math.random() * fields.length) | 0];
    const t0 = now();
    let ack;
    try {
      ack = await client.request("document:update", {
        type: "project",
        id,
        baseVersion: known.get(id) ?? 1,
        changes: { [field]: Math.round(Math.random() * 1e6) },
        // As @truss/client's outbox sends every update: 128 random bits, age since the edit.
        ...(mutationIds ? { mutationId: randomBytes(16).toString("hex"), mutationAgeMs: 0 } : {}),
      });
    } catch {
      outcome.error += 1;
      return;
    }
    latency.record(now() - t0);
    if (!ack?.ok) {
      const code = ack?.error?.code ?? "UNKNOWN";
      outcome.errors[code] = (outcome.errors[code] ?? 0) + 1;
      outcome.error += 1;
      continue;
    }
    outcome[ack.status] += 1;
    const version = ack.status === "conflict" ? ack.current.version : ack.document.version;
    if ((known.get(id) ?? 0) < version) known.set(id, version);
  }
}

serveCommands({
  /**
   * Opens a group of clients, spread over `ports` (one per node). With
   * `recovery` (`truss` or `socketio`), each keeps its place in the company
   * broadcasts that way, for `cut` and `recover`.
   */
  async connect({ group: name, ports, clients: specs, concurrency = 100, recovery = null, cumulative = false }) {
    const { clients, result, histogram } = await connectAll(specs, ports, concurrency, undefined, recovery);
    groups.set(name, [...(groups.get(name) ?? []), ...clients]);
    if (!cumulative) return result;
    // One slice of a longer measurement: the answer adds up the group's cumulative slices so far.
    let totals = connectTotals.get(name);
    if (!totals) connectTotals.set(name, (totals = { histograms: [], connected: 0, failed: 0, errors: {}, elapsedMs: 0 }));
    totals.histograms.push(histogram);
    totals.connected += result.connected;
    totals.failed += result.failed;
    totals.elapsedMs += result.elapsedMs;
    for (const [key, count] of Object.entries(result.errors)) totals.errors[key] = (totals.errors[key] ?? 0) + count;
    const { connected, failed, errors, elapsedMs } = totals;
    return { connected, failed, errors, elapsedMs, perSecond: Math.round((connected / elapsedMs) * 1000), latency: mergedSummary(totals.histograms) };
  },

  /**
   * Subscribes every client of a group to each topic of its spec's `topics`
   * (acked `topic:subscribe`, `concurrency` requests in flight), then asks
   * once for its spec's `refusedTopic`, which the server must refuse: the
   * authorization is exercised both ways.
   */
  async subscribe({ group: name, concurrency = 100 }) {
    const clients = group(name);
    const latency = new Histogram();
    const outcome = { subscribed: 0, refused: 0, wronglyAllowed: 0, failed: 0, errors: {} };
    const requests = clients.flatMap((client) => [
      ...(client.spec.topics ?? []).map((topic) => ({ client, topic, allowed: true })),
      ...(client.spec.refusedTopic ? [{ client, topic: client.spec.refusedTopic, allowed: false }] : []),
    ]);
    let next = 0;
    const startedAt = now();
    const lane = async () => {
      while (next < requests.length) {
        const { client, topic, allowed } = requests[next++];
        const t0 = now();
        let ack;
        try {
          ack = await client.request("topic:subscribe", { topic });
        } catch {
          outcome.failed += 1;
          continue;
        }
        latency.record(now() - t0);
        if (ack?.ok && allowed) outcome.subscribed += 1;
        else if (ack?.ok) outcome.wronglyAllowed += 1;
        else if (!allowed && ack?.error?.code === "FORBIDDEN") outcome.refused += 1;
        else {
          outcome.failed += 1;
          const code = ack?.error?.code ?? "NO_ANSWER";
          outcome.errors[code] = (outcome.errors[code] ?? 0) + 1;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, requests.length) }, lane));
    const elapsedMs = now() - startedAt;
    return { ...outcome, requests: requests.length, elapsedMs: Math.round(elapsedMs), perSecond: Math.round((requests.length / elapsedMs) * 1000), latency: latency.summary() };
  },

  /** Closes a group's connections. */
  async close({ group: name }) {
    const clients = groups.get(name) ?? [];
    groups.delete(name);
    for (let index = 0; index < clients.length; index += 500) {
      await Promise.all(clients.slice(index, index + 500).map((client) => client.close()));
    }
    return { closed: clients.length };
  },

  /**
   * Drops every connection of a group the way a lost network does: the TCP
   * connection is destroyed, with no WebSocket close frame and no Socket.IO
   * disconnect packet, so the server sees a transport close. The clients
   * stay in the group, with what they know, to `recover`.
   */
  async cut({ group: name }) {
    const clients = group(name);
    await Promise.all(clients.map((client) => client.close()));
    return { cut: clients.length, holdingPosition: clients.filter((client) => client.recovery?.holdsPosition).length };
  },

  /**
   * Reconnects every client of a group at once and waits until each has
   * caught up on the `expected` broadcasts it missed (see load/recovery.mjs).
   * Times are from the moment the reconnections start: per device when it
   * was connected again and when it had all it missed, in order.
   */
  async recover({ group: name, expected, timeoutMs = 60_000 }) {
    const clients = group(name);
    const connected = new Histogram();
    const caughtUp = new Histogram();
    const outcome = { devices: clients.length, caughtUp: 0, handedOver: 0, outOfOrder: 0, pages: 0, failed: 0, errors: {} };
    const startedAt = now();
    const deadline = sleep(timeoutMs).then(() => {
      throw new Error("timed out");
    });
    await Promise.all(
      clients.map(async (client) => {
        try {
          const recovered = await Promise.race([client.recovery.recover(client, { expected, onConnected: () => connected.record(now() - startedAt) }), deadline]);
          outcome.handedOver += recovered.handedOver;
          outcome.outOfOrder += recovered.outOfOrder;
          outcome.pages += recovered.pages;
          if (recovered.handedOver === expected && recovered.outOfOrder === 0) {
            outcome.caughtUp += 1;
            caughtUp.record(now() - startedAt);
          } else outcome.failed += 1;
        } catch (error) {
          outcome.failed += 1;
          const key = String(error.message).slice(0, 120);
          outcome.errors[key] = (outcome.errors[key] ?? 0) + 1;
        }
      }),
    );
    deadline.catch(() => {});
    return { ...outcome, totalMs: Math.round(now() - startedAt), connected: connected.summary(), caughtUpMs: caughtUp.summary() };
  },

  reset() {
    stats = freshStats();
    return true;
  },

  /** Counters, and with `latency` (the default) the latency summaries, which take a few ms to compute. */
  stats({ latency = true } = {}) {
    const counts = {
      startedAt: stats.startedAt,
      firstAt: stats.firstAt,
      lastAt: stats.lastAt,
      events: stats.events,
      delivered: stats.delivered[0] + stats.delivered[1],
      inboxReceived: stats.inbox.received,
    };
    if (!latency) return counts;
    return {
      startedAt: stats.startedAt,
      firstAt: stats.firstAt,
      lastAt: stats.lastAt,
      events: stats.events,
      delivered: stats.delivered[0] + stats.delivered[1],
      deliveredByNode: stats.delivered,
      latency: mergedSummary(stats.latency),
      latencyByNode: stats.latency.map((histogram) => histogram.summary()),
      inbox: { ...stats.inbox, latency: stats.inbox.latency.summary() },
      documentBroadcasts: stats.documentBroadcasts,
      other: stats.other,
      openClients: [...groups.values()].reduce((sum, clients) => sum + clients.filter((client) => client.connected).length, 0),
    };
  },

  /**
   * Connects devices that have `perClient` messages waiting and resolves when
   * every one has received them all (acknowledging as it goes).
   */
  async drain({ group: name, ports, clients: specs, perClient, concurrency = 100, timeoutMs = 60_000 }) {
    let drained = 0;
    let resolveAll;
    const allDrained = new Promise((resolve) => (resolveAll = resolve));
    const startedAt = now();
    const { clients, result } = await connectAll(
      specs.map((spec) => ({ ...spec, expectInbox: perClient })),
      ports,
      concurrency,
      (client) => {
        client.inbox.onDrained = () => {
          drained += 1;
          if (drained === specs.length) resolveAll();
        };
      },
    );
    const connectedAt = now();
    groups.set(name, clients);
    const timedOut = await Promise.race([allDrained.then(() => false), sleep(timeoutMs).then(() => true)]);
    const drainedAt = now();
    for (const client of clients) flushAcks(client);
    return {
      connect: result,
      devices: specs.length,
      drained,
      timedOut,
      received: clients.reduce((sum, client) => sum + client.inbox.received, 0),
      connectMs: Math.round(connectedAt - startedAt),
      drainMs: Math.round(drainedAt - startedAt),
    };
  },

  /**
   * Runs every client of a group as a closed-loop document writer for
   * `durationMs`. With `cumulative`, one slice of a longer measurement: the
   * writers keep the versions they saw, and the answer adds up every
   * cumulative slice of the group so far (counts, time, latencies).
   */
  async write({ group: name, durationMs, docs, fields, mutationIds = false, cumulative = false }) {
    const clients = group(name);
    let totals = cumulative ? writeTotals.get(name) : undefined;
    if (!totals) {
      totals = { outcome: { applied: 0, merged: 0, conflict: 0, error: 0, errors: {} }, latency: new Histogram(), elapsedMs: 0 };
      for (const client of clients) client.state = { known: new Map(docs.map((id) => [id, 1])) };
      if (cumulative) writeTotals.set(name, totals);
    }
    const { outcome, latency } = totals;
    const startedAt = now();
    const deadline = startedAt + durationMs;
    await Promise.all(clients.map((client) => runWriter(client, { deadline, docs, fields, outcome, latency, mutationIds })));
    totals.elapsedMs += now() - startedAt;
    return { ...outcome, elapsedMs: Math.round(totals.elapsedMs), latency: latency.summary() };
  },
});

function mergedSummary(histograms) {
  const merged = new Histogram();
  for (const histogram of histograms) {
    for (let index = 0; index < histogram.counts.length; index++) merged.counts[index] += histogram.counts[index];
    merged.count += histogram.count;
    merged.sum += histogram.sum;
    merged.max = Math.max(merged.max, histogram.max);
  }
  return merged.summary();
}
