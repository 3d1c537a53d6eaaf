/**
 * Scenario 7, `topics`: tenant-scoped topics. 10,000 connections (100
 * companies of 100 clients); each company has 10 projects, 1,000 in all, and
 * each client subscribes to 5 of its company's, picked by a seeded random
 * draw, with an acked `topic:subscribe` that the server authorizes from the
 * token's roles (Truss: the `authorize` policy; Socket.IO: the same rule in
 * a hand-written handler, then `socket.join`). Each client also asks for one
 * project it has no grant for, which both servers must refuse. Then:
 *
 * - subscriptions per second and server CPU per subscription;
 * - idle memory per connection with its 5 topics, after 6 s without traffic
 *   and full GCs, and what the subscriptions alone added over the connected,
 *   unsubscribed sockets;
 * - topic fan-out: the server emits to topics drawn at random (seeded; ~50
 *   subscribers each) at rising rates until it saturates, as in `fanout`
 *   but with both servers side by side, taking turns at each rate:
 *   delivered messages per second, CPU per delivered message, the highest
 *   rate held, and the latency at half of Socket.IO's highest held rate.
 */
import { clientsOf, companyIds } from "./layout.mjs";
import { climbInTurns, measureStep } from "../lib/fanout.mjs";
import { sleep } from "../lib/clock.mjs";

/** How long the connections stay quiet before their idle memory is read. */
const IDLE_MS = 6_000;

const SEED = 0x7a55;

function plan(quick) {
  const shape = { projectsPerCompany: 10, topicsPerClient: 5, draws: 10_000 };
  if (quick) {
    return { ...shape, layout: { companies: 10, perCompany: 20 }, warmup: 50, steps: [200], stepMs: 300 };
  }
  return {
    ...shape,
    layout: { companies: 100, perCompany: 100 },
    warmup: 200,
    // Topic emits per second; ×~50 subscribers for messages per second.
    steps: [200, 400, 600, 900, 1200, 1600, 2000, 2600],
    stepMs: 2000,
  };
}

/** mulberry32: a small seeded generator, so every run subscribes and emits alike. */
function seeded(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The clients with their grants and topics, and the emit targets: project
 * `p-<n>` belongs to company `n / projectsPerCompany`; a client's token holds
 * `member` and a `project:<id>` grant for each topic it subscribes to.
 */
export function topicLayout({ layout, projectsPerCompany, topicsPerClient, draws }) {
  const random = seeded(SEED);
  const companies = companyIds(layout.companies);
  const projectsOf = (company) => Array.from({ length: projectsPerCompany }, (_, k) => `p-${company * projectsPerCompany + k}`);
  const subscribers = new Map();
  const clients = clientsOf(layout).map((client) => {
    const projects = projectsOf(Number(client.companyId.slice(1)));
    // A partial Fisher-Yates shuffle: the first topicsPerClient are the picks.
    for (let index = 0; index < topicsPerClient; index++) {
      const swap = index + Math.floor(random() * (projects.length - index));
      [projects[index], projects[swap]] = [projects[swap], projects[index]];
    }
    const picked = projects.slice(0, topicsPerClient);
    for (const project of picked) {
      const key = `${client.companyId}\u0000project:${project}`;
      subscribers.set(key, (subscribers.get(key) ?? 0) + 1);
    }
    return {
      ...client,
      roles: ["member", ...picked.map((project) => `project:${project}`)],
      topics: picked.map((project) => `project:${project}`),
      refusedTopic: `project:${projects[topicsPerClient]}`,
    };
  });
  const targets = Array.from({ length: draws }, () => {
    const company = Math.floor(random() * companies.length);
    const project = projectsOf(company)[Math.floor(random() * projectsPerCompany)];
    return [companies[company], `project:${project}`];
  });
  // prefix[i]: messages the first i targets deliver.
  const prefix = [0];
  for (const [companyId, topic] of targets) prefix.push(prefix.at(-1) + (subscribers.get(`${companyId}\u0000${topic}`) ?? 0));
  const perCycle = prefix.at(-1);
  return {
    clients,
    targets,
    topics: subscribers.size,
    meanSubscribers: perCycle / draws,
    /** How many messages the first `sent` emits deliver (the server cycles through the targets). */
    expectedFor: (sent) => Math.floor(sent / draws) * perCycle + prefix[sent % draws],
  };
}

function runStep(ctx, server, generator, setup, { rate, durationMs, label }) {
  return measureStep(ctx, server, generator, {
    rate,
    durationMs,
    label,
    send: () => server.call("toTopic", { targets: setup.targets, rate, durationMs }),
    expectedFor: setup.expectedFor,
  });
}

const describe = (step) =>
  `${step.rate} emits/s, ${step.offered.toLocaleString("en-US")} msg/s offered → ${step.deliveredPerSecond.toLocaleString("en-US")} delivered, p99 ${step.latency.p99} ms${step.held ? ", held" : ""}; server ${step.cpuPerMessage} µs CPU/msg, loop delay max ${step.eventLoopDelay.max} ms`;

/** Starts a server and connects the clients to it; nothing else runs on it yet. */
async function open(ctx, kind, setup) {
  const { clients } = setup;
  const server = await ctx.server(kind, { features: ["topics"] });
  const generator = await ctx.generator();
  const result = { kind };
  const empty = await server.call("memory");
  ctx.step(kind, `connecting ${clients.length}`);
  result.connect = await generator.call("connect", { group: "all", ports: [server.port], clients, concurrency: 100 });
  if (result.connect.failed > 0) throw new Error(`${kind}: ${result.connect.failed} connections failed: ${JSON.stringify(result.connect.errors)}`);
  await ctx.quiet(generator);
  const connected = await server.call("memory");
  return { kind, server, generator, result, empty, connected };
}

/** Subscribes every client of an opened server, then reads its idle memory. */
async function subscribe(ctx, { kind, server, generator, result, empty, connected }, setup) {
  const { clients } = setup;
  const cpuBefore = await server.call("cpu");
  const subscribed = await ctx.profiled(server, `${kind}-subscribe`, () => generator.call("subscribe", { group: "all", concurrency: 100 }));
  const cpuMicros = (await server.call("cpu")) - cpuBefore;
  const wanted = clients.length * setup.topicsPerClient;
  if (subscribed.subscribed !== wanted || subscribed.refused !== clients.length) {
    throw new Error(`${kind}: ${subscribed.subscribed}/${wanted} subscriptions allowed, ${subscribed.refused}/${clients.length} refused as they should be: ${JSON.stringify(subscribed)}`);
  }
  result.subscribe = { ...subscribed, cpuMicros, cpuPerRequest: Math.round((cpuMicros / subscribed.requests) * 100) / 100 };
  ctx.step(kind, `${subscribed.requests} topic:subscribe (${subscribed.refused} refused) at ${subscribed.perSecond}/s, p99 ${subscribed.latency.p99} ms; server ${result.subscribe.cpuPerRequest} µs CPU each`);
  await ctx.quiet(generator);
  // Idle means idle for a while, as a phone between visits is: state a server lets go of once a connection
  // has been quiet (Truss's event budgets, every 5 s) is not counted as the idle connection's.
  await sleep(ctx.quick ? 200 : IDLE_MS);

  const idle = await server.call("memory");
  const per = (after, before, field) => Math.round((after[field] - before[field]) / clients.length);
  result.memory = {
    empty,
    connected,
    subscribed: idle,
    rssPerConnection: per(idle, empty, "rss"),
    heapPerConnection: per(idle, empty, "heapUsed"),
    rssForTopics: per(idle, connected, "rss"),
    heapForTopics: per(idle, connected, "heapUsed"),
  };
  ctx.step(
    kind,
    `memory with ${setup.topicsPerClient} topics: RSS ${result.memory.rssPerConnection} B/conn, heap ${result.memory.heapPerConnection} B/conn (the topics: RSS ${result.memory.rssForTopics}, heap ${result.memory.heapForTopics})`,
  );
}

/**
 * Both servers, side by side: each is opened (the other already running),
 * subscribed and measured idle in turn; then they climb the fan-out ladder
 * in turns (lib/fanout.mjs `climbInTurns`), and each runs one step at half
 * of Socket.IO's highest held rate.
 */
async function measureServers(ctx, setup) {
  const servers = [await open(ctx, "socketio", setup), await open(ctx, "truss", setup)];
  for (const server of servers) await subscribe(ctx, server, setup);
  const { results, measure } = await climbInTurns(ctx, servers, {
    warmup: setup.warmup,
    steps: setup.steps,
    stepMs: setup.stepMs,
    describe,
    stepOf: ({ server, generator }, step) => runStep(ctx, server, generator, setup, step),
  });
  for (const [index, server] of servers.entries()) Object.assign(server.result, results[index]);
  const [baseline, truss] = servers.map((server) => server.result);
  const half = baseline.highestHeldRate ? baseline.highestHeldRate / 2 : null;
  if (half) {
    for (const server of servers) {
      await ctx.quiet(server.generator, { quietMs: 200 });
      server.result.half = await measure(server, half, `${server.kind}-half`, setup.stepMs * 1.2);
      ctx.step(server.kind, `half of Socket.IO's highest held rate: ${describe(server.result.half)}`);
    }
  }
  await ctx.stopAll();
  return { baseline, truss };
}

export default {
  name: "topics",
  title: "10,000 clients on 5 of 1,000 project topics each: authorized subscribe, idle memory, topic fan-out",
  async run(ctx) {
    const shape = plan(ctx.quick);
    const setup = { ...shape, ...topicLayout(shape) };
    ctx.step(`${setup.clients.length} clients, ${setup.topics} topics, ${setup.meanSubscribers.toFixed(1)} subscribers per emitted topic on average`);
    const { baseline, truss } = await measureServers(ctx, setup);
    const n = setup.clients.length;
    const halfOffered = baseline.half?.offered;
    const rows = [
      { metric: `topic:subscribe per second (${n} × ${setup.topicsPerClient + 1})`, unit: "/s", better: "higher", truss: truss.subscribe.perSecond, baseline: baseline.subscribe.perSecond },
      { metric: "server CPU per topic:subscribe", unit: "µs", better: "lower", truss: truss.subscribe.cpuPerRequest, baseline: baseline.subscribe.cpuPerRequest },
      { metric: `RSS per idle connection, ${setup.topicsPerClient} topics`, unit: "B", better: "lower", truss: truss.memory.rssPerConnection, baseline: baseline.memory.rssPerConnection, target: { max: 1.05 } },
      { metric: `heap per idle connection, ${setup.topicsPerClient} topics`, unit: "B", better: "lower", truss: truss.memory.heapPerConnection, baseline: baseline.memory.heapPerConnection },
      { metric: `RSS the ${setup.topicsPerClient} topics add per connection`, unit: "B", better: "lower", truss: truss.memory.rssForTopics, baseline: baseline.memory.rssForTopics },
      { metric: `heap the ${setup.topicsPerClient} topics add per connection`, unit: "B", better: "lower", truss: truss.memory.heapForTopics, baseline: baseline.memory.heapForTopics },
      { metric: "peak delivered", unit: "msg/s", better: "higher", truss: truss.peakDelivered, baseline: baseline.peakDelivered, target: { min: 0.95 } },
      { metric: "server CPU per delivered message", unit: "µs", better: "lower", truss: truss.cpuPerMessage, baseline: baseline.cpuPerMessage },
      { metric: "highest rate held (p99 < 50 ms)", unit: "msg/s", better: "higher", truss: truss.highestHeld, baseline: baseline.highestHeld },
      { metric: `p50 at ${halfOffered ?? "?"} msg/s (half SIO's held)`, unit: "ms", better: "lower", truss: truss.half?.latency.p50 ?? null, baseline: baseline.half?.latency.p50 ?? null },
      { metric: `p99 at ${halfOffered ?? "?"} msg/s`, unit: "ms", better: "lower", truss: truss.half?.latency.p99 ?? null, baseline: baseline.half?.latency.p99 ?? null },
    ];
    // The clients and the emit targets follow from the seed: the JSON keeps the plan only.
    return { rows, details: { ...shape, topics: setup.topics, meanSubscribers: setup.meanSubscribers, truss, baseline } };
  },
};
