/**
 * The construction ERP's projects and expense approvals on Express: the
 * same catalog, logins, database code and events as the Fastify demo, wired
 * through `@truss/express`.
 *
 * @module
 */
import { createServer, type Server } from "node:http";
import type { RealtimeEngine } from "@truss/core";
import { jwtOptions } from "@truss/example-construction-erp/auth";
import { catalog, type ErpCatalog } from "@truss/example-construction-erp/catalog";
import { createRepositories } from "@truss/example-construction-erp/data";
import { openDatabase, seedDatabase } from "@truss/example-construction-erp/db";
import { seedData } from "@truss/example-construction-erp/seed";
import { attachRealtime, realtimeHandler } from "@truss/express";
import express from "express";
import { loginHandler, requireToken } from "./auth.js";
import { expenseRoutes, projectRoutes } from "./routes.js";

/** The app, its HTTP server (not listening yet) and the engine. */
export interface ExpressErp {
  server: Server;
  realtime: RealtimeEngine<ErpCatalog>;
  /** Closes the engine (clients hear `SERVER_SHUTTING_DOWN`), the HTTP server and the database. */
  close(): Promise<void>;
}

/**
 * Builds the Express ERP on a fresh in-memory SQLite database with the demo
 * seed. Call `server.listen` yourself.
 */
export function createExpressErp(options: { jwtSecret: string; databasePath?: string; logger?: false }): ExpressErp {
  const db = openDatabase(options.databasePath ?? ":memory:");
  seedDatabase(db, seedData());
  const repos = createRepositories(db);

  const app = express();
  const server = createServer(app);
  const realtime = attachRealtime<ErpCatalog>(server, {
    auth: jwtOptions(options.jwtSecret),
    events: catalog,
    ...(options.logger === false ? { logger: false as const } : {}),
  });
  realtime.handle("user:typing", (data, { principal, broadcast }) => broadcast("user:typing", { ...data, userId: principal.userId }));

  app.use(express.json());
  // Sets req.realtime and answers GET /health/websocket.
  app.use(realtimeHandler(realtime));
  app.post("/api/login", loginHandler(repos, options.jwtSecret));
  app.use("/api", requireToken(options.jwtSecret), projectRoutes(repos), expenseRoutes(repos));

  return {
    server,
    realtime,
    async close() {
      await realtime.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      db.close();
    },
  };
}
