import type { AddressInfo } from "node:net";
import { buildApp, type BuildAppOptions, type ErpApp } from "../src/app.js";

/** The secret the tests sign with; never the development default, so a test cannot pass by accident with it. */
export const TEST_JWT_SECRET = "construction-erp-test-secret";

/** A running ERP on a free loopback port with a fresh in-memory database. */
export interface RunningErp extends ErpApp {
  url: string;
  close(): Promise<void>;
}

/** Builds the ERP with the demo seed and listens on `127.0.0.1:0`. */
export async function startErp(options: Partial<BuildAppOptions> = {}): Promise<RunningErp> {
  const erp = await buildApp({ jwtSecret: TEST_JWT_SECRET, engine: { logger: false }, ...options });
  await erp.app.listen({ port: 0, host: "127.0.0.1" });
  const { port } = erp.app.server.address() as AddressInfo;
  return { ...erp, url: `http://127.0.0.1:${port}`, close: () => erp.app.close() };
}

export { call, login, type LoggedIn } from "./rest.js";
export * from "./sockets.js";
