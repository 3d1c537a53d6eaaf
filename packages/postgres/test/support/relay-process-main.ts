/**
 * An engine node with an outbox relay in a process of its own, for tests
 * that kill it with SIGKILL mid-batch. Bundled from source by
 * `relay-process.ts`; configured through `TRUSS_RELAY_PROCESS` (JSON). Prints
 * `{"port":<n>}` once it listens, and `settling <rows>` before it settles
 * each batch, which it holds back for `holdSettleMs` first: the window in
 * which rows are published and not yet removed.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createRealtimeEngine, jwtAuth, relay, type OutboxSource } from "@truss/core";
import { postgresOutbox } from "@truss/postgres";
import { redisAdapter, redisStores } from "@truss/redis";
import { Redis } from "ioredis";
import pg from "pg";

interface RelayProcessConfig {
  redisUrl: string;
  prefix: string;
  schema: string;
  postgres: pg.PoolConfig;
  holdSettleMs: number;
  batchSize: number;
  auth: { secret: string; issuer: string; audience: string };
}

async function main(): Promise<void> {
  const config = JSON.parse(process.env.TRUSS_RELAY_PROCESS ?? "") as RelayProcessConfig;
  const storeClient = new Redis(config.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 2_000, lazyConnect: true });
  const pub = new Redis(config.redisUrl);
  const sub = pub.duplicate();
  for (const client of [storeClient, pub, sub]) client.on("error", () => undefined);
  await storeClient.connect();
  const engine = createRealtimeEngine({
    auth: jwtAuth({ secret: config.auth.secret, algorithms: ["HS256"], issuer: config.auth.issuer, audience: config.auth.audience }),
    logger: false,
    ...redisStores(storeClient, { prefix: config.prefix }),
    adapter: redisAdapter(pub, sub, { key: config.prefix }),
  });
  const pool = new pg.Pool({ ...config.postgres, max: 4 });
  pool.on("error", () => undefined);
  const inner = postgresOutbox(pool, { schema: config.schema }).source();
  const source: OutboxSource = {
    claim: async (limit) => {
      const batch = await inner.claim(limit);
      if (!batch) return batch;
      return {
        rows: batch.rows,
        settle: async (outcome) => {
          process.stdout.write(`settling ${outcome.done.length}\n`);
          await new Promise((resolve) => setTimeout(resolve, config.holdSettleMs));
          await batch.settle(outcome);
        },
      };
    },
    wait: (timeoutMs, signal) => inner.wait(timeoutMs, signal),
    close: () => inner.close!(),
  };
  const http = createServer();
  engine.attach(http);
  relay(engine, source, { batchSize: config.batchSize, pollIntervalMs: 200 });
  http.listen(0, "127.0.0.1", () => {
    process.stdout.write(`${JSON.stringify({ port: (http.address() as AddressInfo).port })}\n`);
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
