import { redisAdapter, redisStores } from "@truss/redis";
import { startTestServer, type TestServer } from "@truss/test-utils";
import { Redis } from "ioredis";

/** An engine node of the lost-reply tests, with the ioredis client its stores use. */
export type LostReplyNode = TestServer & { store: Redis };

/**
 * An engine node whose store client connects to `storePort` (a TCP proxy
 * that can lose Redis's replies, or Redis itself) and gives up on a command
 * after `commandTimeoutMs`; its adapter's pub/sub goes straight to Redis at
 * `redisPort`. What to close is pushed onto `closers`.
 */
export async function startLostReplyNode(options: {
  redisPort: number;
  storePort: number;
  prefix: string;
  commandTimeoutMs: number;
  closers: Array<() => unknown>;
}): Promise<LostReplyNode> {
  const { redisPort, storePort, prefix, commandTimeoutMs, closers } = options;
  const store = new Redis(storePort, {
    host: "127.0.0.1",
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: commandTimeoutMs,
    // Back quickly once the proxy forwards again.
    retryStrategy: () => 50,
  });
  const pub = new Redis(redisPort, { host: "127.0.0.1", lazyConnect: true });
  const sub = pub.duplicate();
  for (const client of [store, pub, sub]) client.on("error", () => undefined);
  await Promise.all([store.connect(), pub.connect(), sub.connect()]);
  const server = await startTestServer({ ...redisStores(store, { prefix }), adapter: redisAdapter(pub, sub, { key: prefix }) });
  closers.push(
    () => [store, pub, sub].forEach((client) => client.disconnect()),
    () => server.close(),
  );
  return Object.assign(server, { store });
}
