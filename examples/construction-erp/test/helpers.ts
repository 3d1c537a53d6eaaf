import type { AddressInfo } from "node:net";
import { buildApp, type BuildAppOptions, type ErpApp } from "../src/app.js";
import { createTestDatabase } from "./postgres.js";

/** The secret the tests sign with; never the development default, so a test cannot pass by accident with it. */
export const TEST_JWT_SECRET = "construction-erp-test-secret";

/** A running ERP on a free loopback port with a fresh in-memory database. */
export interface RunningErp extends ErpApp {
  url: string;
  /** The PostgreSQL database's URL, when it runs on one. */
  databaseUrl?: string;
  close(): Promise<void>;
}

/** Builds the ERP with the demo seed and listens on `127.0.0.1:0`. */
export async function startErp(options: Partial<BuildAppOptions> = {}): Promise<RunningErp> {
  const erp = await buildApp({ jwtSecret: TEST_JWT_SECRET, engine: { logger: false }, ...options });
  await erp.app.listen({ port: 0, host: "127.0.0.1" });
  const { port } = erp.app.server.address() as AddressInfo;
  return { ...erp, url: `http://127.0.0.1:${port}`, close: () => erp.app.close() };
}

/** The two databases the ERP runs on; suites that hold for both run once on each. */
export const BACKENDS = ["sqlite", "postgres"] as const;

/**
 * {@link startErp} on an in-memory SQLite database, or on a PostgreSQL
 * database of its own, created for it and dropped by `close()`.
 */
export async function startErpOn(backend: (typeof BACKENDS)[number], options: Partial<BuildAppOptions> = {}): Promise<RunningErp> {
  if (backend === "sqlite") return startErp(options);
  const database = await createTestDatabase("app");
  try {
    const erp = await startErp({ ...options, databaseUrl: database.url });
    return {
      ...erp,
      databaseUrl: database.url,
      async close() {
        await erp.close();
        await database.drop();
      },
    };
  } catch (error) {
    await database.drop();
    throw error;
  }
}

/**
 * Waits until the ERP's outbox is empty: every row committed so far has been
 * published (and so written to its sockets) and removed.
 */
export async function outboxDrained(erp: ErpApp, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await erp.data.pendingOutboxRows()) > 0) {
    if (Date.now() > deadline) throw new Error(`the outbox still holds ${await erp.data.pendingOutboxRows()} rows after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export { call, login, type LoggedIn } from "./rest.js";
export * from "./sockets.js";
