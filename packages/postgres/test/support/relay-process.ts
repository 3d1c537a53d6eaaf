import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET } from "@truss/test-utils";
import type pg from "pg";

const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url));
const entry = fileURLToPath(new URL("./relay-process-main.ts", import.meta.url));
const START_TIMEOUT_MS = 15_000;

// esbuild as tsup (a root dev dependency) ships it.
const requireFromTsup = createRequire(createRequire(import.meta.url).resolve("tsup"));
const esbuild = requireFromTsup("esbuild") as { build(options: Record<string, unknown>): Promise<unknown> };

/** A relay node in a child process. */
export interface RelayProcess {
  readonly port: number;
  /** Lines it printed so far (`settling <n>` per batch). */
  readonly lines: string[];
  /** SIGKILL, as a crash: no shutdown code runs. Resolves once the process is gone. */
  kill(): Promise<void>;
}

/** The bundle of `relay-process-main.ts`, built once per test file. */
let bundled: Promise<{ dir: string; file: string }> | undefined;

async function bundle(): Promise<{ dir: string; file: string }> {
  bundled ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), "truss-relay-process-"));
    const file = join(dir, "relay-process.cjs");
    await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      platform: "node",
      format: "cjs",
      packages: "external",
      target: "node20",
      outfile: file,
      logLevel: "error",
      tsconfig: join(repoRoot, "tsconfig.base.json"),
      absWorkingDir: repoRoot,
    });
    return { dir, file };
  })();
  return bundled;
}

/** Removes the bundle. */
export async function removeRelayProcessBundle(): Promise<void> {
  if (!bundled) return;
  const { dir } = await bundled;
  bundled = undefined;
  await rm(dir, { recursive: true, force: true });
}

/**
 * Starts an engine with redis stores and adapter and a relay of `schema`'s
 * outbox in a child Node process, from the TypeScript sources (bundled with
 * esbuild; npm packages resolve through `NODE_PATH`).
 */
export async function startRelayProcess(config: {
  redisUrl: string;
  prefix: string;
  schema: string;
  postgres: pg.PoolConfig;
  holdSettleMs: number;
  batchSize: number;
}): Promise<RelayProcess> {
  const { file } = await bundle();
  const child: ChildProcess = spawn(process.execPath, [file], {
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      NODE_PATH: ["core", "redis", "postgres"].map((name) => join(repoRoot, `packages/${name}/node_modules`)).join(delimiter),
      TRUSS_RELAY_PROCESS: JSON.stringify({ ...config, auth: { secret: TEST_SECRET, issuer: TEST_ISSUER, audience: TEST_AUDIENCE } }),
    },
  });
  const killChild = () => child.kill("SIGKILL");
  process.once("exit", killChild);
  const lines: string[] = [];
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay process did not start within ${START_TIMEOUT_MS} ms: ${stderr}`)), START_TIMEOUT_MS);
    let buffer = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (line.startsWith("{")) {
          clearTimeout(timer);
          resolve((JSON.parse(line) as { port: number }).port);
        } else lines.push(line);
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`relay process exited (${code ?? signal}) before it listened: ${stderr}`));
    });
  });
  return {
    port,
    lines,
    async kill() {
      process.off("exit", killChild);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGKILL");
      await exited;
    },
  };
}
