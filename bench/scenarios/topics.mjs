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
 *   subscribers each) at rising rates until it saturates, as in `fanout`:
 *   delivered messages per second, CPU per delivered message, the highest
 *   rate held, and the latency at half of Socket.IO's highest held rate.
 */
import { clientsOf, companyIds } from "./layout.mjs";
import { measureStep } from "../lib/fanout.mjs";
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

async function measureServer(ctx, kind, setup, { halfRate = null } = {}) {
  const { clients, stepMs } = setup;
  const server = await ctx.server(kind, { features: ["topics"] });
  const generator = await ctx.generator();
  const result = { kind };
  const empty = await server.call("memory");
  ctx.step(kind, `connecting ${clients.length}`);
  result.connect = await generator.call("connect", { group: "all", ports: [server.port], clients, concurrency: 100 });
  if (result.connect.failed > 0) throw new Error(`${kind}: ${result.connect.failed} connections failed: ${JSON.stringify(result.connect.errors)}`);
  await ctx.quiet(generator);
  const connected = await server.call("memory");

  const cpuBefore = await server.call("cpu");
  const subscribe = await ctx.profiled(server, `${kind}-subscribe`, () => generator.call("subscribe", { group: "all", concurrency: 100 }));
  const cpuMicros = (await server.call("cpu")) - cpuBefore;
  const wanted = clients.length * setup.topicsPerClient;
  if (subscribe.subscribed !== wanted || subscribe.refused !== clients.length) {
    throw new Error(`${kind}: ${subscribe.subscribed}/${wanted} subscriptions allowed, ${subscribe.refused}/${clients.length} refused as they should be: ${JSON.stringify(subscribe)}`);
  }
  result.subscribe = { ...subscribe, cpuMicros, cpuPerRequest: Math.round((cpuMicros / subscribe.requests) * 100) / 100 };
  ctx.step(kind, `${subscribe.requests} topic:subscribe (${subscribe.refused} refused) at ${subscribe.perSecond}/s, p99 ${subscribe.latency.p99} ms; server ${result.subscribe.cpuPerRequest} µs CPU each`);
  await ctx.quiet(generator);
  // Idle means idle for a while, as a phone between visits is: state a server lets go of once a connection
  // has been quiet (Truss's event budgets, every 5 s) is not counted as the idle connection's.
  await sleep(ctx.quick ? 200 : IDLE_MS);

  const subscribed = await server.call("memory");
  const per = (after, before, field) => Math.round((after[field] - before[field]) / clients.length);
  result.memory = {
    empty,
    connected,
    subscribed,
    rssPerConnection: per(subscribed, empty, "rss"),
    heapPerConnection: per(subscribed, empty, "heapUsed"),
    rssForTopics: per(subscribed, connected, "rss"),
    heapForTopics: per(subscribed, connected, "heapUsed"),
  };
  ctx.step(
    kind,
    `memory with ${setup.topicsPerClient} topics: RSS ${result.memory.rssPerConnection} B/conn, heap ${result.memory.heapPerConnection} B/conn (the topics: RSS ${result.memory.rssForTopics}, heap ${result.memory.heapForTopics})`,
  );

  await runStep(ctx, server, generator, setup, { rate: setup.warmup, durationMs: Math.min(stepMs, 1000), label: `${kind}-warmup` });
  result.steps = [];
  let saturatedSteps = 0;
  // As in `fanout`: a step that delivered everything but missed p99 gets one more try.
  const measure = async (rate, label, durationMs = stepMs) => {
    const step = await runStep(ctx, server, generator, setup, { rate, durationMs, label });
    if (step.held || step.saturated) return step;
    ctx.step(kind, `${describe(step)}; once more`);
    await ctx.quiet(generator, { quietMs: 200 });
    return runStep(ctx, server, generator, setup, { rate, durationMs, label: `${label}-again` });
  };
  for (const rate of setup.steps) {
    const step = await measure(rate, `${kind}-${rate}`);
    result.steps.push(step);
    ctx.step(kind, describe(step));
    if (step.saturated && ++saturatedSteps === 2) break;
    await ctx.quiet(generator, { quietMs: 200 });
  }
  const delivered = result.steps.reduce((sum, step) => sum + step.delivered, 0);
  result.cpuPerMessage = Math.round((result.steps.reduce((sum, step) => sum + step.cpuMicros, 0) / delivered) * 100) / 100;
  const held = result.steps.filter((step) => step.held);
  result.highestHeld = held.length ? held[held.length - 1].offered : null;
  result.peakDelivered = Math.max(...result.steps.map((step) => step.deliveredPerSecond));
  const half = halfRate ?? (held.length ? held[held.length - 1].rate / 2 : null);
  if (half) {
    await ctx.quiet(generator, { quietMs: 200 });
    result.half = await measure(half, `${kind}-half`, stepMs * 1.2);
    ctx.step(kind, `half of Socket.IO's highest held rate: ${describe(result.half)}`);
  }
  await ctx.stopAll();
  return result;
}

export default {
  name: "topics",
  title: "10,000 clients on 5 of 1,000 project topics each: authorized subscribe, idle memory, topic fan-out",
  async run(ctx) {
    const shape = plan(ctx.quick);
    const setup = { ...shape, ...topicLayout(shape) };
    ctx.step(`${setup.clients.length} clients, ${setup.topics} topics, ${setup.meanSubscribers.toFixed(1)} subscribers per emitted topic on average`);
    const baseline = await measureServer(ctx, "socketio", setup);
    const truss = await measureServer(ctx, "truss", setup, { halfRate: baseline.half?.rate ?? null });
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
