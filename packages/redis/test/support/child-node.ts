import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET } from "@truss/test-utils";

const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url));
const entry = fileURLToPath(new URL("./child-node-main.ts", import.meta.url));
const START_TIMEOUT_MS = 15_000;

/**
 * esbuild as tsup (a root dev dependency) ships it, so the bundle step needs
 * no extra install and no `node_modules/.bin` entry a clean install may lack.
 */
const requireFromTsup = createRequire(createRequire(import.meta.url).resolve("tsup"));
const esbuild = requireFromTsup("esbuild") as { build(options: Record<string, unknown>): Promise<unknown> };

/** An engine node running in a child process. */
export interface ChildNode {
  readonly port: number;
  readonly url: string;
  /** SIGKILL, as a crash: no shutdown code runs. Resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGSTOP: the process stalls (as in a long GC pause or a frozen VM) with its sockets open. */
  pause(): void;
  /** SIGCONT: the stalled process carries on where it stopped. */
  resume(): void;
  /** "running" or how the process ended, and the last of its stderr (its subscriber's events among them): for assertion messages. */
  describe(): string;
}

/**
 * Starts `child-node-main.ts` in its own Node process. It is bundled from the
 * TypeScript sources with esbuild (tsconfig paths resolve `@truss/*` to
 * `src`, like vitest's aliases), so the child runs the code under test rather
 * than whatever `dist` another build left; npm packages stay external and
 * resolve through `NODE_PATH` from the packages that depend on them.
 */
export async function startChildNode(config: {
  redisUrl: string;
  prefix: string;
  ttlMs: number;
  undelivered?: { afterMs: number; leaseMs: number; timeoutMs: number; pollIntervalMs: number };
}): Promise<ChildNode> {
  const dir = await mkdtemp(join(tmpdir(), "truss-child-node-"));
  const bundle = join(dir, "child-node.cjs");
  let child: ChildProcess | undefined;
  const killChild = () => child?.kill("SIGKILL");
  try {
    await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      platform: "node",
      format: "cjs",
      packages: "external",
      target: "node20",
      outfile: bundle,
      logLevel: "error",
      tsconfig: join(repoRoot, "tsconfig.base.json"),
      absWorkingDir: repoRoot,
    });
    child = spawn(process.execPath, [bundle], {
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        NODE_PATH: [join(repoRoot, "packages/core/node_modules"), join(repoRoot, "packages/redis/node_modules")].join(delimiter),
        TRUSS_CHILD_NODE: JSON.stringify({
          ...config,
          auth: { secret: TEST_SECRET, issuer: TEST_ISSUER, audience: TEST_AUDIENCE },
        }),
      },
    });
    // If the test process dies first, the child must not outlive it.
    process.once("exit", killChild);
    const output = { stderr: "" };
    const port = await readPort(child, output);
    const running = child;
    return {
      port,
      url: `http://127.0.0.1:${port}`,
      async kill() {
        if (running.exitCode === null && running.signalCode === null) {
          const exited = once(running, "exit");
          running.kill("SIGKILL");
          await exited;
        }
        process.removeListener("exit", killChild);
        await rm(dir, { recursive: true, force: true });
      },
      pause: () => void running.kill("SIGSTOP"),
      resume: () => void running.kill("SIGCONT"),
      describe: () =>
        `${running.exitCode === null && running.signalCode === null ? "running" : `exited (${running.exitCode ?? running.signalCode})`}; stderr:\n${output.stderr || "(none)"}`,
    };
  } catch (error) {
    killChild();
    process.removeListener("exit", killChild);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Resolves with the port the child prints; rejects with its output if it exits or stays silent. Collects stderr into `output`. */
function readPort(child: ChildProcess, output: { stderr: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    let stdout = "";
    const timer = setTimeout(() => fail(new Error(`the child node printed no port within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    const fail = (error: Error) => {
      clearTimeout(timer);
      reject(new Error(`${error.message}\nstdout: ${stdout}\nstderr: ${output.stderr}`));
    };
    // Kept after the port is read, so a child that dies later can say why.
    child.stderr?.on("data", (chunk: Buffer) => (output.stderr = (output.stderr + chunk.toString()).slice(-4000)));
    child.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split("\n").find((candidate) => candidate.startsWith("{"));
      if (!line) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once("exit", (code, signal) => fail(new Error(`the child node exited (${code ?? signal}) before listening`)));
  });
}
