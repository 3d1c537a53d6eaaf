/**
 * An engine node in a process of its own, for tests that kill it with
 * SIGKILL, as a crash would: nothing of `engine.close()` runs. Bundled from
 * source by `child-node.ts`; configured through `TRUSS_CHILD_NODE` (JSON);
 * prints `{"port":<n>}` once it listens.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createRealtimeEngine, jwtAuth } from "@truss/core";
import { redisAdapter, redisStores } from "@truss/redis";
import { Redis } from "ioredis";

interface ChildNodeConfig {
  redisUrl: string;
  prefix: string;
  ttlMs: number;
  auth: { secret: string; issuer: string; audience: string };
  /** The `undelivered` option's timing; its handler never settles, so a call this node claims is still running when it is killed. */
  undelivered?: { afterMs: number; leaseMs: number; timeoutMs: number; pollIntervalMs: number };
}

async function main(): Promise<void> {
  const config = JSON.parse(process.env.TRUSS_CHILD_NODE ?? "") as ChildNodeConfig;
  const storeClient = new Redis(config.redisUrl, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: 2_000,
    lazyConnect: true,
  });
  const pub = new Redis(config.redisUrl);
  const sub = pub.duplicate({ connectionName: "child-sub" });
  for (const client of [storeClient, pub, sub]) client.on("error", () => undefined);
  // What the subscriber went through, for the tests' failure messages (ChildNode.describe()).
  const started = Date.now();
  for (const event of ["connect", "ready", "error", "close", "reconnecting", "end"]) {
    sub.on(event, (detail?: unknown) => process.stderr.write(`sub ${event} +${Date.now() - started} ms${detail instanceof Error ? `: ${detail.message}` : ""}\n`));
  }
  await storeClient.connect();
  const engine = createRealtimeEngine({
    auth: jwtAuth({ secret: config.auth.secret, algorithms: ["HS256"], issuer: config.auth.issuer, audience: config.auth.audience }),
    logger: false,
    ...redisStores(storeClient, { prefix: config.prefix }),
    adapter: redisAdapter(pub, sub, { key: config.prefix }),
    presenceTiming: { ttlMs: config.ttlMs },
    ...(config.undelivered ? { undelivered: { ...config.undelivered, handler: () => new Promise(() => {}) } } : {}),
  });
  const http = createServer();
  engine.attach(http);
  http.listen(0, "127.0.0.1", () => {
    process.stdout.write(`${JSON.stringify({ port: (http.address() as AddressInfo).port })}\n`);
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
