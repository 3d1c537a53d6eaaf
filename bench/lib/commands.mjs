import { Session } from "node:inspector/promises";
import { writeFileSync } from "node:fs";
import { Socket } from "node:net";
import { writeHeapSnapshot } from "node:v8";

let profiler = null;
let writes = null;

/**
 * Counts what this process writes to its sockets while a phase is profiled:
 * `write` and `writev` calls (each about one system call), the chunks they
 * carry and their bytes. Installed at the first profiled phase only, so runs
 * without `--cpu-prof` write through Node's own functions untouched.
 */
function countSocketWrites() {
  if (writes) return writes;
  writes = { write: 0, writev: 0, chunks: 0, bytes: 0 };
  const counts = writes;
  const { _write: write, _writev: writev } = Socket.prototype;
  Socket.prototype._write = function (chunk, encoding, callback) {
    counts.write += 1;
    counts.chunks += 1;
    counts.bytes += chunk.length;
    return write.call(this, chunk, encoding, callback);
  };
  Socket.prototype._writev = function (chunks, callback) {
    counts.writev += 1;
    counts.chunks += chunks.length;
    for (const { chunk } of chunks) counts.bytes += chunk.length;
    return writev.call(this, chunks, callback);
  };
  return writes;
}

/**
 * The child side of the bench's IPC: each message `{ id, command, args }`
 * runs `handlers[command](args)` and answers `{ id, result }` or
 * `{ id, error }`. The child exits when the runner goes away.
 */
export function serveCommands(handlers) {
  const all = {
    ping: () => "pong",
    /**
     * CPU time used so far, user + system, in µs. Differences between two
     * calls give the cost of the work in between, which other processes on
     * the machine barely move, unlike wall-clock rates.
     */
    cpu: () => {
      const { user, system } = process.cpuUsage();
      return user + system;
    },
    /** Writes a heap snapshot (for finding what a connection keeps alive); returns its path. */
    heapSnapshot: ({ path }) => writeHeapSnapshot(path),
    /** Starts the V8 CPU profiler, so a profile covers one measured phase rather than the whole process. */
    async profileStart() {
      profiler = new Session();
      profiler.connect();
      await profiler.post("Profiler.enable");
      await profiler.post("Profiler.setSamplingInterval", { interval: 500 });
      await profiler.post("Profiler.start");
      const counts = countSocketWrites();
      for (const key of Object.keys(counts)) counts[key] = 0;
      return true;
    },
    /**
     * Stops the profiler and writes a `.cpuprofile` (Chrome DevTools, speedscope)
     * to `path`, and the phase's socket writes beside it (`<path>.writes.json`).
     */
    async profileStop({ path }) {
      if (!profiler) return null;
      const { profile } = await profiler.post("Profiler.stop");
      profiler.disconnect();
      profiler = null;
      writeFileSync(path, JSON.stringify(profile));
      writeFileSync(`${path}.writes.json`, JSON.stringify(writes));
      return path;
    },
    exit: () => {
      setImmediate(() => process.exit(0));
      return "bye";
    },
    ...handlers,
  };
  process.on("message", async (message) => {
    const { id, command, args } = message ?? {};
    const handler = all[command];
    try {
      if (!handler) throw new Error(`unknown command "${command}"`);
      const result = await handler(args ?? {});
      process.send({ id, result });
    } catch (error) {
      process.send({ id, error: error instanceof Error ? error.stack : String(error) });
    }
  });
  process.on("disconnect", () => process.exit(0));
  process.send({ type: "ready" });
}

/** Sends an unsolicited event (progress) to the runner. */
export function emitEvent(event, data) {
  process.send?.({ type: "event", event, data });
}
