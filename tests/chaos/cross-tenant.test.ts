import { request, requireRedisOrSkip, sleep, startRedisServer, waitFor, type RedisServer, type TestServer } from "@truss/test-utils";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { memoryBackend, redisBackend, type Backend, type Topology } from "./support/backends.js";
import { TENANT_PAIRS, type TenantPair } from "./support/ids.js";
import { preview } from "./support/sockets.js";
import { channelOf, TenantSide } from "./support/tenant-sides.js";
import { chaosFile } from "./support/chaos-file.js";

/**
 * Two companies whose ids, users and devices collide or are crafted to
 * collide under naive key and room schemes. Whatever company A does (company
 * broadcasts, topic messages to a topic of the same name, `toUser` messages
 * live and replayed, document updates to watchers of the same document key,
 * presence) never reaches a socket of company B, and the other way round;
 * each side's own traffic is checked to arrive, so a silent server cannot
 * pass. On Redis, A's sockets and B's sit on different nodes and every
 * server-side send goes through the other node.
 */

/** One topic name both companies use. */
const SHARED_TOPIC = "project:shared";

/**
 * Every socket may do anything inside its company, so each check below is
 * about the tenant boundary alone; with a policy, document updates go to the
 * document's watchers rather than the company.
 */
const ENGINE_OPTIONS = { authorize: () => true };

/** Presence changes after a company's first are coalesced for up to a second: wait that long before the last look. */
const PRESENCE_WINDOW_MS = 1_200;

const { figures, crashes } = chaosFile("cross-tenant");

interface PairRun {
  pair: TenantPair;
  index: number;
  a: TenantSide;
  b: TenantSide;
  /** Leaks seen through the stores rather than on a socket: presence lists, isOnline, document reads. */
  storeLeaks: string[];
}

/** The channels leaks are counted by, printed even when nothing leaked. */
const LEAK_CHANNELS = ["company broadcast", "topic", "inbox (live)", "inbox (replay)", "document:updated", "presence", "store"];

const markOf = (side: "A" | "B", index: number) => `${side}#${index}#`;

/** Runs one pair through every channel; returns what B saw of A and A of B, and the store-level leaks. */
async function runPair(topology: Topology, pair: TenantPair, index: number, settleMs: number): Promise<PairRun> {
  // Odd pairs swap the nodes, and A's server-side sends go through B's node (and the other way round).
  const [homeA, homeB]: [TestServer, TestServer] = index % 2 === 0 ? [topology.a, topology.b] : [topology.b, topology.a];
  const markA = markOf("A", index);
  const markB = markOf("B", index);
  const userB = pair.userB ?? pair.user;
  const run: PairRun = { pair, index, a: new TenantSide("A"), b: new TenantSide("B"), storeLeaks: [] };
  const { a, b } = run;
  const docType = `${pair.device.slice(0, 100)}#${index}`;
  const docId = pair.user.slice(0, 200);

  await b.connect("watcher", homeB, { userId: `watcher-${markB}`, companyId: pair.b });
  await a.connect("watcher", homeA, { userId: `watcher-${markA}`, companyId: pair.a });
  await a.connect("writer", homeA, { userId: `writer-${markA}`, companyId: pair.a });
  await a.connect("user", homeA, { userId: pair.user, companyId: pair.a, deviceId: pair.device });
  await waitFor(() => homeB.engine.isOnline(pair.a, pair.user), { message: "A's user online" });

  // A's user is online and B's same-named user is not: nothing of A's may show in B's presence.
  if (await homeA.engine.isOnline(pair.b, userB)) run.storeLeaks.push(`isOnline(B, ${JSON.stringify(userB)}) is true while only A's user is online`);
  const listedB = await request(b.sockets.get("watcher")!, "presence:list", {});
  const namesB: string[] = (listedB.users ?? []).map((user: { userId: string }) => user.userId);
  const foreignInB = namesB.filter((name) => name.includes(markA) || name === userB);
  if (foreignInB.length > 0) run.storeLeaks.push(`B's presence:list shows ${preview(foreignInB)}`);
  const listedA = await request(a.sockets.get("watcher")!, "presence:list", {});
  const foreignInA = (listedA.users ?? []).map((user: { userId: string }) => user.userId).filter((name: string) => name.includes(markB));
  if (foreignInA.length > 0) run.storeLeaks.push(`A's presence:list shows ${preview(foreignInA)}`);

  // B's user has the same sub (or a colliding pair) and the same device id; it must be admitted as its own device.
  await b.connect("user", homeB, { userId: userB, companyId: pair.b, deviceId: pair.device }).catch((error: { data?: unknown }) => {
    run.storeLeaks.push(`B's user was refused while A's was online: ${preview(error.data ?? String(error))}`);
  });

  // Both watchers hold the same topic and watch the same document key, each in their own company.
  for (const side of [a, b]) {
    const watcher = side.sockets.get("watcher")!;
    expect(await request(watcher, "topic:subscribe", { topic: SHARED_TOPIC }), "topic:subscribe").toMatchObject({ ok: true, topic: SHARED_TOPIC });
    expect(await request(watcher, "document:watch", { type: docType, id: docId }), "document:watch").toMatchObject({ ok: true });
  }
  homeB.engine.toTopic(pair.a, SHARED_TOPIC).emit("chaos:topic", { mark: markA });
  homeA.engine.toTopic(pair.b, SHARED_TOPIC).emit("chaos:topic", { mark: markB });
  homeB.engine.toCompany(pair.a).emit("chaos:company", { mark: markA });
  homeA.engine.toCompany(pair.b).emit("chaos:company", { mark: markB });
  await homeB.engine.toUser(pair.a, pair.user).emit("chaos:direct", { mark: markA });
  await homeA.engine.toUser(pair.b, userB).emit("chaos:direct", { mark: markB });
  const written = await request(a.sockets.get("writer")!, "document:update", { type: docType, id: docId, baseVersion: 0, changes: { mark: markA } });
  expect(written, "A's document write").toMatchObject({ ok: true, status: "applied" });

  // B names A's document: it does not exist in B, and B creating it starts at version 1.
  const userSocketB = b.sockets.get("user");
  if (userSocketB) {
    for (const event of ["document:get", "document:history"]) {
      const answer = await request(userSocketB, event, { type: docType, id: docId });
      if (answer.ok !== false || answer.error?.code !== "NOT_FOUND" || JSON.stringify(answer).includes(markA)) {
        run.storeLeaks.push(`B's ${event} of A's document answered ${preview(answer)}`);
      }
    }
    const created = await request(userSocketB, "document:update", { type: docType, id: docId, baseVersion: 0, changes: { mark: markB } });
    if (created.status !== "applied" || created.document?.version !== 1 || JSON.stringify(created).includes(markA)) {
      run.storeLeaks.push(`B's first write of the same document key answered ${preview(created)}`);
    }
  }

  // Each side's own traffic arrives: the sweep is not passing because nothing is delivered at all.
  await waitFor(
    () =>
      a.heard("watcher", "chaos:company", markA) &&
      a.heard("watcher", "chaos:topic", markA) &&
      b.heard("watcher", "chaos:topic", markB) &&
      a.heard("user", "inbox:message", markA) &&
      a.heard("watcher", "document:updated", markA) &&
      b.heard("watcher", "chaos:company", markB) &&
      (!userSocketB || (b.heard("user", "inbox:message", markB) && b.heard("watcher", "document:updated", markB))),
    { message: "each company's own broadcasts, messages and document updates" },
  );

  // Replay: both users go offline, get a message each, and come back on the other node.
  a.disconnect("user");
  b.disconnect("user");
  await waitFor(async () => !(await homeA.engine.isOnline(pair.a, pair.user)) && !(await homeA.engine.isOnline(pair.b, userB)), {
    message: "both users offline",
  });
  await homeB.engine.toUser(pair.a, pair.user).emit("chaos:offline", { mark: markA });
  await homeA.engine.toUser(pair.b, userB).emit("chaos:offline", { mark: markB });
  a.phase = "replay";
  b.phase = "replay";
  await b.connect("user", homeA, { userId: userB, companyId: pair.b, deviceId: pair.device });
  await a.connect("user", homeB, { userId: pair.user, companyId: pair.a, deviceId: pair.device });
  await waitFor(() => a.heard("user", "inbox:message", `"chaos:offline"`) && b.heard("user", "inbox:message", `"chaos:offline"`), {
    message: "each user's replayed message",
  });
  await sleep(settleMs);
  return run;
}

/** Leaks of one pair so far, as `channel: detail` lines. */
function leaksOf(run: PairRun): string[] {
  const onSockets = [
    ...run.b.carrying(markOf("A", run.index)).map((entry) => ({ ...entry, to: "B" })),
    ...run.a.carrying(markOf("B", run.index)).map((entry) => ({ ...entry, to: "A" })),
  ];
  return [
    ...onSockets.map((entry) => `${channelOf(entry)}: ${entry.to}'s ${entry.socket} got ${entry.event} ${entry.json.slice(0, 160)}`),
    ...run.storeLeaks.map((leak) => `store: ${leak}`),
  ];
}

function sweep(backend: () => Backend, settleMs: number): void {
  let topology: Topology;
  const runs: PairRun[] = [];
  const section = () => `${backend().name}`;

  beforeAll(async () => {
    topology = await backend().start(ENGINE_OPTIONS);
    for (const channel of LEAK_CHANNELS) figures.set(section(), `leaks: ${channel}`, 0);
  });
  afterAll(async () => {
    for (const run of runs) {
      run.a.closeAll();
      run.b.closeAll();
    }
    await topology?.close();
  });

  for (const [index, pair] of TENANT_PAIRS.entries()) {
    const ids = preview({ a: pair.a, b: pair.b, user: pair.user, userB: pair.userB, device: pair.device }, 90);
    test(`pair ${index}, ${pair.why}: nothing crosses between ${ids}`, async () => {
      const run = await runPair(topology, pair, index, settleMs);
      runs.push(run);
      figures.count(section(), "pairs");
      figures.count(section(), "events received", [...run.a.received.values(), ...run.b.received.values()].reduce((sum, log) => sum + log.length, 0));
      const leaks = leaksOf(run);
      for (const leak of leaks) figures.count(section(), `leaks: ${leak.slice(0, leak.indexOf(":"))}`);
      expect(leaks).toEqual([]);
    }, 30_000);
  }

  test("after the presence coalescing window, still nothing has crossed in any pair", async () => {
    await sleep(PRESENCE_WINDOW_MS);
    const leaks = runs.flatMap((run) => leaksOf(run).map((leak) => `pair ${run.index}: ${leak}`));
    figures.set(section(), "leaks after the window", leaks.length);
    expect(leaks).toEqual([]);
    expect(crashes.describe()).toEqual([]);
  });
}

describe("on the in-memory stores", () => {
  sweep(() => memoryBackend, 100);
});

describe.runIf(requireRedisOrSkip("chaos cross-tenant sweep on Redis"))("on Redis, two nodes", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  sweep(() => redisBackend(() => redis), 300);
});
