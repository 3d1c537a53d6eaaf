/**
 * What a scenario is given: starting servers and the load generator (pinned
 * to separate cores), the shared redis-server, progress reporting, and the
 * sizes for a full or a quick run.
 */
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { BenchChild } from "./processes.mjs";
import { progress } from "./progress.mjs";
import { startRedis } from "./redis-server.mjs";
import { quiet } from "./settle.mjs";

const BENCH_DIR = fileURLToPath(new URL("..", import.meta.url));
const SERVER_CORE = 0;
const GENERATOR_CORE = 1;

export const serverScript = (kind) => `${BENCH_DIR}servers/${kind}.mjs`;

/** The label of each server in tables and JSON. */
export const SERVER_LABELS = { truss: "Truss", socketio: "Socket.IO", ws: "ws" };

export class ScenarioContext {
  constructor({ quick = false, cpuProf = false, profileDir = `${BENCH_DIR}results/profiles` } = {}) {
    this.quick = quick;
    this.cpuProf = cpuProf;
    this.profileDir = profileDir;
    this.children = new Set();
    this.redisServer = null;
    this.scenario = "";
    this.prefixCount = 0;
  }

  /** A progress line for the running scenario. */
  step(...parts) {
    progress(this.scenario, ...parts);
  }

  /** Starts a server under test (`truss`, `socketio`, `ws`), calls its `start`, and returns it with its port. */
  async server(kind, args = {}, { name = kind, core = SERVER_CORE, env = {} } = {}) {
    const child = await BenchChild.start(name, serverScript(kind), { core, env });
    this.children.add(child);
    const { port } = await child.call("start", args, 30_000);
    child.port = port;
    child.kind = kind;
    return child;
  }

  /**
   * Runs `measure()`; with `--cpu-prof`, profiles `server` while it runs and
   * writes `results/profiles/<scenario>-<label>.cpuprofile`, so a profile
   * covers the measured phase and not the connection set-up before it.
   */
  async profiled(server, label, measure) {
    if (!this.cpuProf) return measure();
    mkdirSync(this.profileDir, { recursive: true });
    await server.call("profileStart");
    try {
      return await measure();
    } finally {
      const path = await server.call("profileStop", { path: `${this.profileDir}/${this.scenario}-${label}.cpuprofile` });
      this.step(label, `profile: ${path}`);
    }
  }

  /** Waits for the generator to go quiet (see scenarios/settle.mjs); a quick run waits less. */
  quiet(generator, { quietMs = 300, ...options } = {}) {
    return quiet(generator, { quietMs: this.quick ? Math.min(quietMs, 100) : quietMs, ...options });
  }

  /** Starts the load generator on the other core. */
  async generator() {
    const child = await BenchChild.start("generator", `${BENCH_DIR}load/generator.mjs`, { core: GENERATOR_CORE });
    this.children.add(child);
    return child;
  }

  /** The run's redis-server, started on first use. */
  async redis() {
    this.redisServer ??= await startRedis();
    return this.redisServer;
  }

  /** A Redis key prefix no earlier server of this run used. */
  prefix() {
    this.prefixCount += 1;
    return `bench${this.prefixCount}`;
  }

  async stop(child) {
    this.children.delete(child);
    await child.stop();
  }

  /** Stops every child still running (after each scenario, and on failure). */
  async stopAll() {
    await Promise.allSettled([...this.children].map((child) => child.stop()));
    this.children.clear();
  }

  /** Stops the redis-server (at the end of the run). */
  async close() {
    await this.stopAll();
    await this.redisServer?.stop();
    this.redisServer = null;
  }
}
