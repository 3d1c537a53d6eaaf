import { connect, type TrussClient } from "@truss/client";
import { relay, type OutboxRelay, type RealtimeEngineOptions } from "@truss/core";
import { signToken, startTestServer, waitFor, type TestClaims, type TestServer } from "@truss/test-utils";
import type pg from "pg";
import { postgresOutbox, type PostgresOutbox } from "../../src/index.js";
import type { PostgresOutboxSourceOptions } from "../../src/source.js";

/** An engine on a real Socket.IO server with a relay of the schema's outbox. */
export interface RelayNode {
  server: TestServer;
  outbox: PostgresOutbox;
  relay: OutboxRelay;
  close(): Promise<void>;
}

/** Starts an engine and relays `schema`'s outbox through it. */
export async function startRelayNode(
  pool: pg.Pool,
  schema: string,
  options: { engine?: Partial<RealtimeEngineOptions>; source?: PostgresOutboxSourceOptions; pollIntervalMs?: number; batchSize?: number } = {},
): Promise<RelayNode> {
  const server = await startTestServer(options.engine ?? {});
  const outbox = postgresOutbox(pool, { schema });
  const handle = relay(server.engine, outbox.source(options.source), {
    pollIntervalMs: options.pollIntervalMs ?? 1000,
    minBackoffMs: 20,
    maxBackoffMs: 200,
    ...(options.batchSize ? { batchSize: options.batchSize } : {}),
  });
  return { server, outbox, relay: handle, close: () => server.close() };
}

/** A connected `@truss/client` device that records the data its app is handed for `event` (if given), in order. */
export async function device(url: string, claims: TestClaims & { deviceId: string }, event?: string): Promise<{ client: TrussClient; heard: unknown[] }> {
  const client = connect(url, {
    token: signToken(claims),
    deviceId: claims.deviceId,
    reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
    socketOptions: { transports: ["websocket"] },
  });
  const heard: unknown[] = [];
  if (event !== undefined) client.on(event, (data) => void heard.push(data));
  await waitFor(() => client.status === "connected", { message: "the device to connect" });
  return { client, heard };
}

/** Runs `work` in a transaction on one pooled client: committed when it resolves, rolled back when it throws. */
export async function transaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const result = await work(client);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** The outbox rows left in `schema` (pending and failed). */
export async function outboxRows(pool: pg.Pool, schema: string): Promise<Array<{ id: string; event: string; failed_code: string | null; failed_message: string | null }>> {
  const { rows } = await pool.query(`SELECT id::text, event, failed_code, failed_message FROM "${schema}".outbox ORDER BY id`);
  return rows;
}
