import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { accessSync, constants } from "node:fs";
import { createConnection, createServer, type AddressInfo } from "node:net";
import { delimiter, join } from "node:path";

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /** The port to listen on; default a free one. */
  port?: number;
  /** Extra `redis-server` arguments, e.g. `["--maxmemory", "10mb"]`. */
  args?: string[];
}

/** A `redis-server` child process on 127.0.0.1 that a test owns. */
export interface RedisServer {
  /** The port it listens on; the same across {@link RedisServer.restart}. */
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** Shuts it down (`SHUTDOWN NOSAVE`, then signals) and waits for the process to exit. */
  stop(): Promise<void>;
  /** Stops it if it runs, then starts a fresh, empty one on the same port: a Redis restart, for fault tests. */
  restart(): Promise<void>;
  /** Kills it with SIGKILL, as a crash would, and waits for the process to exit. */
  kill(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3_000;

/** Every server still running, so none outlives the test process. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * The `redis-server` binary to run: `TRUSS_REDIS_SERVER` when set, else the
 * first `redis-server` on the PATH, else `null`.
 */
export function redisServerBinary(): string | null {
  const fromEnv = process.env.TRUSS_REDIS_SERVER;
  return firstExecutable(fromEnv ? [fromEnv] : onPath("redis-server"));
}

/** `name` in each directory of the PATH, in order. */
export function onPath(name: string): string[] {
  return (process.env.PATH ?? "").split(delimiter).filter(Boolean).map((dir) => join(dir, name));
}

/** The first of `candidates` that is an executable file, else `null`. */
export function firstExecutable(candidates: readonly string[]): string | null {
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here; try the next one.
    }
  }
  return null;
}

/** Whether a `redis-server` binary is available to {@link startRedisServer}. */
export function redisAvailable(): boolean {
  return redisServerBinary() !== null;
}

/**
 * Whether the Redis tests should run, for `describe.runIf(requireRedisOrSkip())`.
 * Without a `redis-server` binary they are skipped with a loud warning, unless
 * `TRUSS_REQUIRE_REDIS=1` (set in CI), when this throws so the run fails.
 *
 * @param what - names the skipped tests in the warning.
 * @throws Error when the binary is missing and `TRUSS_REQUIRE_REDIS=1`.
 */
export function requireRedisOrSkip(what = "Redis tests"): boolean {
  if (redisAvailable()) return true;
  const hint =
    "Install Redis (e.g. `apt-get install redis-server`, `brew install redis`) or set TRUSS_REDIS_SERVER to the binary's path.";
  if (process.env.TRUSS_REQUIRE_REDIS === "1") {
    throw new Error(`TRUSS_REQUIRE_REDIS=1, but no redis-server binary was found for ${what}. ${hint}`);
  }
  console.warn(
    [
      "",
      "!".repeat(78),
      `!! ${what} are SKIPPED: no redis-server binary was found.`,
      `!! ${hint}`,
      "!! Set TRUSS_REQUIRE_REDIS=1 to make a missing Redis fail the run instead.",
      "!".repeat(78),
      "",
    ].join("\n"),
  );
  return false;
}

/**
 * Starts `redis-server` on 127.0.0.1 with persistence off and waits until it
 * answers PING. The process is killed when the test process exits, even if a
 * test forgets to call {@link RedisServer.stop}.
 *
 * @throws Error when no binary is found or the server does not come up.
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const binary = redisServerBinary();
  if (!binary) throw new Error("startRedisServer: no redis-server binary found (see requireRedisOrSkip)");
  installExitHook();
  const argsFor = (port: number) => [
    ...["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    ...(options.args ?? []),
  ];
  // A free port can be taken between our probe and redis-server's bind; a
  // fresh probe on the next attempt gets another.
  let attempt = 0;
  let port: number;
  let child: ChildProcess;
  for (;;) {
    port = options.port ?? (await freePort());
    try {
      child = await launch(binary, argsFor(port), port);
      break;
    } catch (error) {
      attempt += 1;
      if (options.port !== undefined || attempt >= 3) throw error;
    }
  }
  const args = argsFor(port);

  const stop = async () => {
    if (!isRunning(child)) return;
    const exited = once(child, "exit");
    await sendCommand(port, "SHUTDOWN NOSAVE").catch(() => child.kill("SIGTERM"));
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  };

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    async restart() {
      await stop();
      child = await launch(binary, args, port);
    },
    async kill() {
      if (!isRunning(child)) return;
      const exited = once(child, "exit");
      child.kill("SIGKILL");
      await exited;
    },
  };
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Spawns the server and resolves once it answers PING; rejects (and kills it) if it exits or is too slow. */
async function launch(binary: string, args: string[], port: number): Promise<ChildProcess> {
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  child.once("exit", () => running.delete(child));
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  child.stderr?.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (!isRunning(child)) {
      throw new Error(`redis-server on port ${port} exited during start-up:\n${output}`);
    }
    if ((await sendCommand(port, "PING").catch(() => "")).startsWith("+PONG")) return child;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`redis-server on port ${port} did not answer PING within ${START_TIMEOUT_MS} ms:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Sends one inline command and resolves with the first reply line (or "" when the server closes first). */
function sendCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let reply = "";
    socket.setTimeout(1_000, () => socket.destroy(new Error(`no reply to ${command}`)));
    socket.once("connect", () => socket.write(`${command}\r\n`));
    socket.on("data", (chunk) => {
      reply += chunk.toString();
      if (reply.includes("\r\n")) socket.end();
    });
    socket.once("close", () => resolve(reply));
    socket.once("error", reject);
  });
}

/** A port that was free a moment ago: bind port 0, read the port, close. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Kills every server this process started when it exits, or when it is told to stop. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const child of running) child.kill("SIGKILL");
  };
  process.once("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      killAll();
      // Only re-raise when nobody else handles the signal, so the default
      // (exit) still happens; otherwise leave the decision to them.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}
