import { fork, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

/** Whether CPU pinning is available (util-linux `taskset`). */
const TASKSET = ["/usr/bin/taskset", "/bin/taskset"].find((path) => existsSync(path));

/**
 * Pins every thread of `pid` to one core, so the server under test and the
 * load generator do not share a CPU. Threads created later inherit it.
 */
export function pin(pid, core) {
  if (!TASKSET || core === undefined || core === null) return false;
  const result = spawnSync(TASKSET, ["-a", "-p", "-c", String(core), String(pid)], { stdio: "ignore" });
  return result.status === 0;
}

/** Whether processes get pinned on this machine. */
export const canPin = () => Boolean(TASKSET);

/**
 * A bench child process (a server under test or the load generator), driven
 * by commands over the IPC channel: `call("broadcast", {...})` resolves with
 * the child's answer.
 */
export class BenchChild {
  /** `execPath`: what runs the script instead of this Node.js (a wrapper that starts it under valgrind, say). */
  constructor(name, script, { core, args = [], execArgv = [], env = {}, execPath } = {}) {
    this.name = name;
    this.core = core;
    this.nextId = 1;
    this.pending = new Map();
    this.listeners = new Set();
    this.exited = false;
    this.child = fork(script, args, {
      ...(execPath ? { execPath } : {}),
      execArgv: ["--expose-gc", ...execArgv],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env: { ...process.env, ...env },
    });
    this.ready = new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    this.child.on("message", (message) => this.onMessage(message));
    this.child.on("exit", (code, signal) => {
      this.exited = true;
      const error = new Error(`${name} exited (${signal ?? code}) while a command was running`);
      this.readyReject(error);
      for (const { reject } of this.pending.values()) reject(error);
      this.pending.clear();
    });
  }

  /** Starts a child and waits for it to be ready, then pins it. */
  static async start(name, script, options) {
    const child = new BenchChild(name, script, options);
    await child.ready;
    child.pinned = pin(child.child.pid, options?.core);
    return child;
  }

  get pid() {
    return this.child.pid;
  }

  onMessage(message) {
    if (message?.type === "ready") return this.readyResolve();
    if (message?.type === "event") {
      for (const listener of this.listeners) listener(message.event, message.data);
      return;
    }
    const pending = this.pending.get(message?.id);
    if (!pending) return;
    this.pending.delete(message.id);
    clearTimeout(pending.timer);
    if (message.error) pending.reject(new Error(`${this.name}: ${message.error}`));
    else pending.resolve(message.result);
  }

  /** Listens to events the child sends on its own (progress). */
  onEvent(listener) {
    this.listeners.add(listener);
  }

  /** Sends a command; rejects after `timeoutMs`. */
  call(command, args = {}, timeoutMs = 120_000) {
    if (this.exited) return Promise.reject(new Error(`${this.name} is not running`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: "${command}" took longer than ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.child.send({ id, command, args });
    });
  }

  /**
   * Asks the child to exit (so `--cpu-prof` gets written), then kills it if
   * it has not within `graceMs`.
   */
  async stop(graceMs = 5000) {
    if (this.exited) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.call("exit", {}, graceMs).catch(() => {});
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
