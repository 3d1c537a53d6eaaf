import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { firstExecutable, freePort, onPath, redisServerBinary, startRedisServer, type RedisServer } from "./redis-server.js";

const run = promisify(execFile);

/** How long the cluster may take to agree on its slots after `--cluster create`. */
const CLUSTER_READY_TIMEOUT_MS = 20_000;

/** A local Redis Cluster of masters without replicas, on 127.0.0.1, that a test owns. */
export interface RedisCluster {
  /** The masters' addresses, for `new Cluster(nodes)`. */
  readonly nodes: { host: string; port: number }[];
  /** The master processes, e.g. to stop one in a fault test. */
  readonly servers: readonly RedisServer[];
  /** Stops every master and removes the cluster's config files. */
  stop(): Promise<void>;
}

/**
 * The `redis-cli` binary beside the `redis-server` that {@link startRedisServer}
 * runs, else the first on the PATH, else `null`.
 */
export function redisCliBinary(): string | null {
  const server = redisServerBinary();
  return firstExecutable([...(server ? [join(dirname(server), "redis-cli")] : []), ...onPath("redis-cli")]);
}

/**
 * Whether the Redis Cluster tests should run, for `describe.runIf(...)`: they
 * need `redis-server` and `redis-cli`. Skips loudly, or throws with
 * `TRUSS_REQUIRE_REDIS=1`, as `requireRedisOrSkip` does.
 *
 * @throws Error when a binary is missing and `TRUSS_REQUIRE_REDIS=1`.
 */
export function requireRedisClusterOrSkip(what = "Redis Cluster tests"): boolean {
  if (redisServerBinary() && redisCliBinary()) return true;
  const message = `${what} need redis-server and redis-cli (install Redis 7, e.g. \`apt-get install redis-server\`).`;
  if (process.env.TRUSS_REQUIRE_REDIS === "1") throw new Error(`TRUSS_REQUIRE_REDIS=1, but ${message}`);
  console.warn(`\n${"!".repeat(78)}\n!! SKIPPED: ${message}\n${"!".repeat(78)}\n`);
  return false;
}

/**
 * Starts a Redis Cluster of `masters` (default three) `redis-server`
 * processes with no replicas and no persistence, joins them with
 * `redis-cli --cluster create`, and resolves once every node reports
 * `cluster_state:ok` with all 16384 slots assigned. Stopped on failure.
 *
 * @throws Error when a binary is missing or the cluster does not form.
 */
export async function startRedisCluster(options: { masters?: number } = {}): Promise<RedisCluster> {
  const cli = redisCliBinary();
  if (!cli) throw new Error("startRedisCluster: no redis-cli binary found (see requireRedisClusterOrSkip)");
  const masters = options.masters ?? 3;
  const dir = await mkdtemp(join(tmpdir(), "truss-redis-cluster-"));
  const servers: RedisServer[] = [];
  const stop = async () => {
    await Promise.allSettled(servers.map((server) => server.stop()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let index = 0; index < masters; index += 1) {
      // The bus port defaults to port + 10000, which may be taken or past 65535.
      const busPort = await freePort();
      servers.push(
        await startRedisServer({
          args: [
            ...["--cluster-enabled", "yes", "--cluster-port", String(busPort)],
            ...["--cluster-config-file", join(dir, `nodes-${index}-${busPort}.conf`), "--dir", dir],
          ],
        }),
      );
    }
    const addresses = servers.map((server) => `127.0.0.1:${server.port}`);
    await run(cli, ["--cluster", "create", ...addresses, "--cluster-replicas", "0", "--cluster-yes"], { timeout: 20_000 });
    await waitUntilReady(cli, servers);
    return { nodes: servers.map((server) => ({ host: "127.0.0.1", port: server.port })), servers, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function waitUntilReady(cli: string, servers: readonly RedisServer[]): Promise<void> {
  const deadline = Date.now() + CLUSTER_READY_TIMEOUT_MS;
  for (;;) {
    const infos = await Promise.all(
      servers.map((server) =>
        run(cli, ["-h", "127.0.0.1", "-p", String(server.port), "CLUSTER", "INFO"], { timeout: 2_000 }).then(
          ({ stdout }) => stdout,
          () => "",
        ),
      ),
    );
    if (infos.every((info) => /cluster_state:ok/.test(info) && /cluster_slots_ok:16384/.test(info))) return;
    if (Date.now() > deadline) {
      throw new Error(`the Redis Cluster did not reach cluster_state:ok within ${CLUSTER_READY_TIMEOUT_MS} ms:\n${infos.join("\n")}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
