import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { connect, type StreamResync } from "@truss/client";
import type { StreamPosition, StreamStart } from "@truss/protocol";
import { connectAs, request, requireRedisOrSkip, signToken, startRedisServer, waitFor, type RedisServer, type TestServer } from "@truss/test-utils";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { memoryBackend, redisBackend, type Backend, type NodeOptions, type Topology } from "./support/backends.js";
import { CHAOS_SEED, scaled } from "./support/env.js";
import { preview } from "./support/sockets.js";
import { buildValue, keySpec, leafSpec, type ValueSpec } from "./support/values.js";
import { chaosFile } from "./support/chaos-file.js";

/**
 * Company and topic streams at their edges. A device with no position that
 * joins while two nodes publish at once must start where the server says
 * the stream stood, not at the first message it hears (node B's own later
 * broadcast used to reach it before node A's earlier one, relayed through
 * Redis, and the earlier one was dropped). And data the application changes
 * right after `emit` (a BigInt, a cycle, a function, deleted keys) must
 * change nothing stored or sent (it used to end the process through an
 * unhandled rejection and stop the company's stream).
 */

const ENGINE_OPTIONS: NodeOptions = { authorize: () => true };
const RACE_EVENT = "chaos:stock";
const EDIT_EVENT = "chaos:edit";
const PER_NODE = 30;

const { figures, crashes } = chaosFile("stream-edges", { seeded: true });

/** A broadcast of the race: the node that sent it and its number there. */
interface Tagged {
  node: string;
  n: number;
}
const label = ({ node, n }: Tagged) => `${node}${n}`;

/** How far what the app was handed is from `expected` (every broadcast after `top`, once, in offset order). */
function compareHanded(handed: readonly string[], expected: readonly string[], offsets: ReadonlyMap<string, number>, top: number) {
  const offsetOf = (name: string) => offsets.get(name) ?? Number.NaN;
  let outOfOrder = 0;
  for (let index = 1; index < handed.length; index++) if (!(offsetOf(handed[index]!) > offsetOf(handed[index - 1]!))) outOfOrder += 1;
  return {
    lost: expected.filter((name) => !handed.includes(name)).length,
    duplicated: handed.length - new Set(handed).size,
    outOfOrder,
    beforeStart: handed.filter((name) => !(offsetOf(name) > top)).length,
  };
}

/** When a round's device joins the stream: as B accepts it, once both nodes have stored a few, or by subscribing a fresh topic. */
type Join = "accepted" | "mid-publish" | "topic";
const joinOf = (round: number): Join => (round % 2 === 1 ? "topic" : round % 4 === 0 ? "accepted" : "mid-publish");
/** Broadcasts stored before a `mid-publish` device connects. */
const STORED_BEFORE_JOIN = 10;

/**
 * One round of the race: A and B publish {@link PER_NODE} broadcasts each
 * while a fresh device on node B joins the stream ({@link Join}), then A one
 * last one that closes the round. Returns what went wrong, empty when the
 * device was handed every broadcast after its start, once, in offset order,
 * with no resync.
 */
async function raceRound(topology: Topology, round: number, section: string): Promise<string[]> {
  const { a, b } = topology;
  const companyId = `race-co-${round}`;
  const join = joinOf(round);
  const topic = join === "topic" ? `project:race-${round}` : null;
  const emitter = (node: TestServer) => (topic ? node.engine.toTopic(companyId, topic) : node.engine.toCompany(companyId));
  const offsets = new Map<string, number>();
  const send = async (node: TestServer, data: Tagged) => {
    const position = await emitter(node).emit(RACE_EVENT, data);
    if (!position) throw new Error(`round ${round}: ${label(data)} was not stored`);
    offsets.set(label(data), position.offset);
  };
  const publish = async (node: TestServer, name: string) => {
    for (let n = 0; n < PER_NODE; n++) await send(node, { node: name, n });
  };

  let publishing: Promise<unknown> | undefined;
  const publishBoth = () => (publishing = Promise.all([publish(a, "A"), publish(b, "B")]));
  if (join === "mid-publish") {
    publishBoth();
    await waitFor(() => offsets.size >= STORED_BEFORE_JOIN, { intervalMs: 1, message: `round ${round}: broadcasts stored before the device connects` });
  }
  const accepted = new Promise<void>((resolve) => b.engine.io!.of("/").once("connection", () => resolve()));
  const deviceId = `fresh-${round}`;
  const device = connect(b.url, { token: signToken({ userId: "fresh", companyId, deviceId }), deviceId, socketOptions: { transports: ["websocket"] } });
  try {
    const handed: string[] = [];
    device.on(RACE_EVENT, (data) => void handed.push(label(data as Tagged)));
    // Live arrivals as the socket got them, before the client put them in order.
    const arrivals: number[] = [];
    device.socket.on(RACE_EVENT, (_data: unknown, position?: StreamPosition) => void (position && arrivals.push(position.offset)));
    const resyncs: StreamResync[] = [];
    device.onResync((resync) => void resyncs.push(resync));
    let reconnects = 0;
    device.onStatus((status) => void (status === "reconnecting" && (reconnects += 1)));
    let start: StreamStart | undefined;
    device.socket.on("stream:start", (announced: StreamStart) => void (start ??= announced));

    if (topic) {
      await waitFor(() => device.status === "connected", { message: `round ${round}: the device to connect` });
      await device.subscribe(topic);
      publishBoth();
    } else if (join === "accepted") {
      await accepted;
      publishBoth();
    }
    await publishing;
    await send(a, { node: "end", n: 0 });
    // The client hands over in offset order: once the last broadcast is handed over, nothing before it is still coming.
    await waitFor(() => handed.includes("end0") && !device.recovering, { timeoutMs: 10_000, message: `round ${round}: the round's last broadcast (have ${handed.length})` });

    // A topic subscribed before anything was published to it starts at 0.
    const top = topic ? 0 : start!.top;
    const expected = [...offsets].filter(([, offset]) => offset > top).sort(([, x], [, y]) => x - y).map(([name]) => name);
    const counts = compareHanded(handed, expected, offsets, top);
    figures.count(section, `rounds joining: ${join}`);
    figures.count(section, "expected", expected.length);
    figures.count(section, "handed to the app", handed.length);
    figures.count(section, "lost", counts.lost);
    figures.count(section, "duplicated", counts.duplicated);
    figures.count(section, "out of order", counts.outOfOrder);
    figures.count(section, "from before the start", counts.beforeStart);
    figures.count(section, "resyncs", resyncs.length);
    figures.count(section, "device reconnects", reconnects);
    if (top > 0) figures.count(section, "rounds starting after offset 0");
    if (arrivals.some((offset, index) => index > 0 && offset < arrivals[index - 1]!)) figures.count(section, "rounds with live arrivals out of offset order");

    const problems: string[] = [];
    if (counts.lost + counts.duplicated + counts.outOfOrder + counts.beforeStart > 0 || handed.join() !== expected.join()) {
      problems.push(`round ${round} (${topic ?? "company"}, start ${top}): ${JSON.stringify(counts)}; handed ${handed.join(" ")}; expected ${expected.join(" ")}`);
    }
    if (resyncs.length > 0) problems.push(`round ${round}: resyncs ${JSON.stringify(resyncs.map((resync) => resync.reason))}`);
    return problems;
  } finally {
    device.close();
  }
}

/** Leaves JSON carries: the suite's leaves without `NaN` and `±Infinity`, which `emit` refuses. */
const jsonLeaf = leafSpec.filter((spec) => !("leaf" in spec) || typeof spec.leaf !== "number" || Number.isFinite(spec.leaf));

/**
 * Whether the Redis adapter relays a value to the other node unchanged. Its
 * MessagePack encoder wraps integers outside 64 bits (1e20 arrives as
 * 7766279631452242000, 1e308 as 0) and mangles lone surrogates ("\ud800"
 * arrives as "\u{10000}"); its decoder assigns keys, so an own `__proto__`
 * becomes the object's prototype and is not sent on.
 */
function relaysUnchanged(value: unknown): boolean {
  if (typeof value === "number") return !Number.isInteger(value) || (value >= -(2 ** 63) && value < 2 ** 64);
  return typeof value !== "string" || !/\p{Surrogate}/u.test(value);
}

/**
 * A JSON value the engine accepts: leaves (special numbers, lone surrogates,
 * crafted ids), arrays and objects with hostile keys, a few levels deep.
 * `relayed` leaves out what the Redis adapter changes between nodes
 * ({@link relaysUnchanged}): the stream keeps those, a device on another node
 * hears them changed live. That loss is not what this file looks for.
 */
function jsonSpec(relayed: boolean): { value: fc.Arbitrary<ValueSpec>; key: fc.Arbitrary<string> } {
  const leaf = relayed ? jsonLeaf.filter((spec) => "leaf" in spec && relaysUnchanged(spec.leaf)) : jsonLeaf;
  const key = relayed ? keySpec.filter((name) => name !== "__proto__" && relaysUnchanged(name)) : keySpec;
  const value = fc.letrec<{ value: ValueSpec }>((tie) => ({
    value: fc.oneof(
      { maxDepth: 3, depthSize: "small" },
      { arbitrary: leaf, weight: 5 },
      { arbitrary: fc.array(tie("value"), { maxLength: 4 }).map((array) => ({ array })), weight: 2 },
      { arbitrary: fc.array(fc.tuple(key, tie("value")), { maxLength: 4 }).map((object) => ({ object })), weight: 2 },
    ),
  })).value;
  return { value, key };
}

/** What the application does to the data right after `emit`. */
type Mutation = "bigint" | "cycle" | "function" | "throwing getter" | "throwing toJSON" | "delete keys" | "change values" | "nested bigint" | "nested cycle";
const MUTATIONS: readonly Mutation[] = ["bigint", "cycle", "function", "throwing getter", "throwing toJSON", "delete keys", "change values", "nested bigint", "nested cycle"];

/** One broadcast: its stream, its data, and what is done to the data after the call (nothing: a plain emit). */
interface EditSpec {
  to: "company" | "topic";
  data: ValueSpec;
  key: string;
  mutations: Mutation[];
}

/** Broadcasts to make; `relayed` as for {@link jsonSpec}. */
function editSpec(relayed: boolean): fc.Arbitrary<EditSpec> {
  const json = jsonSpec(relayed);
  return fc.record({
    to: fc.constantFrom("company" as const, "topic" as const),
    data: fc.array(fc.tuple(json.key, json.value), { maxLength: 5 }).map((object): ValueSpec => ({ object })),
    key: keySpec,
    mutations: fc.oneof({ arbitrary: fc.constant<Mutation[]>([]), weight: 1 }, { arbitrary: fc.uniqueArray(fc.constantFrom(...MUTATIONS), { minLength: 1, maxLength: 3 }), weight: 2 }),
  });
}

/** Sets an own property, so `__proto__` is a key and a cycle through it is not a prototype. */
const define = (target: object, key: string, value: unknown) => Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });

/** The first object or array held by a data property of `value` (a getter added by an earlier mutation is not called). */
function firstNested(value: Record<string, unknown>): object | undefined {
  for (const { value: inner } of Object.values(Object.getOwnPropertyDescriptors(value))) {
    if (typeof inner === "object" && inner !== null) return inner as object;
  }
  return undefined;
}

function mutate(value: Record<string, unknown>, key: string, mutation: Mutation): void {
  const nested = firstNested(value) ?? value;
  switch (mutation) {
    case "bigint":
      return void define(value, key, 10n ** 30n);
    case "cycle":
      return void define(value, key, value);
    case "function":
      return void define(value, key, () => "changed");
    case "throwing getter":
      return void Object.defineProperty(value, key, {
        enumerable: true,
        configurable: true,
        get: () => {
          throw new Error("read after emit");
        },
      });
    case "throwing toJSON":
      return void define(value, "toJSON", () => {
        throw new Error("encoded after emit");
      });
    case "delete keys":
      for (const own of Object.keys(value)) delete value[own];
      return;
    case "change values":
      for (const own of Object.keys(value)) define(value, own, "changed after emit");
      return;
    case "nested bigint":
      return void (Array.isArray(nested) ? nested.push(1n) : define(nested, key, 1n));
    case "nested cycle":
      return void (Array.isArray(nested) ? nested.push(value) : define(nested, key, value));
  }
}

/** A broadcast the bystander heard: its data and position. */
interface Heard {
  data: unknown;
  position: StreamPosition | undefined;
}

function mutationCases(backend: () => Backend, runs: number, { relayed }: { relayed: boolean }): void {
  let topology: Topology | undefined;
  afterEach(async () => {
    await topology?.close();
    topology = undefined;
    expect(crashes.describe()).toEqual([]);
  });

  test("data changed right after emit (a BigInt, a cycle, a function, deleted keys) changes nothing stored or sent, and the stream goes on", async () => {
    const section = `${backend().name}: changed after emit`;
    topology = await backend().start(ENGINE_OPTIONS);
    const { a, b } = topology;
    const topic = "project:edits";
    let run = 0;
    const startedAt = Date.now();

    const property = async (edits: EditSpec[]) => {
      const companyId = `edits-co-${(run += 1)}`;
      const bystander = await connectAs(b.url, { userId: "bystander", companyId, deviceId: "bystander-tablet" });
      try {
        const heard: Heard[] = [];
        bystander.on(EDIT_EVENT, (data: unknown, position?: StreamPosition) => void heard.push({ data, position }));
        expect(await request(bystander, "topic:subscribe", { topic })).toMatchObject({ ok: true });

        const snapshots: unknown[] = [];
        const sent: Array<Promise<StreamPosition | null>> = [];
        const emit = (to: EditSpec["to"], data: unknown) => (to === "company" ? a.engine.toCompany(companyId) : a.engine.toTopic(companyId, topic)).emit(EDIT_EVENT, data);
        for (const edit of edits) {
          const data = buildValue(edit.data) as Record<string, unknown>;
          snapshots.push(JSON.parse(JSON.stringify(data)));
          sent.push(emit(edit.to, data));
          for (const mutation of edit.mutations) {
            mutate(data, edit.key, mutation);
            figures.count(section, `mutation: ${mutation}`);
          }
          figures.count(section, edit.mutations.length > 0 ? "emits changed after the call" : "plain emits");
        }
        // One plain emit per stream after the rest: the stream goes on.
        const after = (["company", "topic"] as const).map((to) => ({ to, data: { after: run } }));
        for (const { to, data } of after) {
          snapshots.push(JSON.parse(JSON.stringify(data)));
          sent.push(emit(to, data));
        }

        const settled = await Promise.allSettled(sent);
        const positions = settled.map((outcome) => (outcome.status === "fulfilled" ? outcome.value : null));
        const unresolved = settled.flatMap((outcome, index) => (outcome.status === "fulfilled" && outcome.value ? [] : [`emit ${index}: ${outcome.status === "rejected" ? String(outcome.reason) : "no position"}`]));
        figures.count(section, "emits", settled.length);
        figures.count(section, "emits without a position", unresolved.length);
        expect(unresolved, "every emit resolves with a position").toEqual([]);

        await waitFor(() => heard.length >= sent.length, { timeoutMs: 5_000, message: `every broadcast at the bystander (have ${heard.length} of ${sent.length})` });
        const mismatches: string[] = [];
        positions.forEach((position, index) => {
          const copies = heard.filter((entry) => entry.position?.stream === position!.stream && entry.position.offset === position!.offset);
          if (copies.length !== 1 || !isDeepStrictEqual(copies[0]!.data, snapshots[index])) {
            mismatches.push(`${position!.stream} ${position!.offset}: sent ${preview(snapshots[index])}, heard ${preview(copies.map((copy) => copy.data))}`);
          }
        });
        figures.count(section, "heard differently from the call", mismatches.length);
        expect(mismatches, "the bystander hears each broadcast once, as it was at the call").toEqual([]);

        for (const stream of new Set(positions.map((position) => position!.stream))) {
          const expected = positions.flatMap((position, index) => (position!.stream === stream ? [{ offset: position!.offset, data: snapshots[index] }] : []));
          const read = await request(bystander, "stream:read", { stream, epoch: positions.find((position) => position!.stream === stream)!.epoch, after: 0 });
          figures.count(section, "stream:read");
          expect(read, preview(read)).toMatchObject({ ok: true, resync: null });
          const entries = read.entries as Array<{ offset: number; data: unknown }>;
          expected.sort((x, y) => x.offset - y.offset);
          expect(entries.map(({ offset }) => offset)).toEqual(expected.map(({ offset }) => offset));
          const changed = entries.filter((entry, index) => !isDeepStrictEqual(entry.data, expected[index]!.data));
          figures.count(section, "read back differently from the call", changed.length);
          expect(changed.map((entry) => `${stream} ${entry.offset}: ${preview(entry.data)}`), "stream:read returns each broadcast as it was at the call").toEqual([]);
        }
        expect(crashes.describe(), "nothing escaped as an unhandled rejection or exception").toEqual([]);
      } finally {
        bystander.close();
      }
    };

    try {
      await fc.assert(fc.asyncProperty(fc.array(editSpec(relayed), { minLength: 1, maxLength: 8 }), property), {
        numRuns: runs,
        seed: CHAOS_SEED,
        plugins: [fc.interruptAfterTimeLimit(30_000)],
      });
    } finally {
      figures.set(section, "runs", run);
      figures.set(section, "ms", Date.now() - startedAt);
    }
  }, 90_000);
}

describe("on the in-memory stores", () => {
  mutationCases(() => memoryBackend, scaled(100, 10), { relayed: false });
});

describe.runIf(requireRedisOrSkip("chaos stream edges on Redis"))("on Redis, two nodes", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  test("a fresh device that joins while two nodes publish at once is handed every message after its start, once and in order, with no resync", async () => {
    const section = "redis: fresh device, two nodes publishing";
    const topology = await redisBackend(() => redis).start(ENGINE_OPTIONS);
    const rounds = scaled(40, 4);
    const startedAt = Date.now();
    const problems: string[] = [];
    try {
      for (let round = 0; round < rounds; round++) problems.push(...(await raceRound(topology, round, section)));
    } finally {
      figures.set(section, "rounds", rounds);
      figures.set(section, "ms", Date.now() - startedAt);
      await topology.close();
    }
    expect(problems).toEqual([]);
    expect(topology.redisErrors).toEqual([]);
    expect(crashes.describe()).toEqual([]);
  }, 90_000);

  mutationCases(() => redisBackend(() => redis), scaled(40, 5), { relayed: true });
});
