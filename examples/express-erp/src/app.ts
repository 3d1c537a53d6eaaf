/**
 * The construction ERP's projects and expense approvals on Express: the
 * same catalog, logins, database code, policy and events as the Fastify
 * demo, wired through `@truss/express`.
 *
 * @module
 */
import { createServer, type Server } from "node:http";
import type { RealtimeEngine } from "@truss/core";
import { createAccess } from "@truss/example-construction-erp/access";
import { jwtOptions } from "@truss/example-construction-erp/auth";
import { catalog, type ErpCatalog } from "@truss/example-construction-erp/catalog";
import { createRepositories } from "@truss/example-construction-erp/data";
import { openDatabase, seedDatabase } from "@truss/example-construction-erp/db";
import { seedData } from "@truss/example-construction-erp/seed";
import { sqliteDocumentStore } from "@truss/example-construction-erp/sqlite-document-store";
import { TOPIC_PATTERNS } from "@truss/example-construction-erp/topics";
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
 * seed, its site reports included. Call `server.listen` yourself.
 */
export async function createExpressErp(options: { jwtSecret: string; databasePath?: string; logger?: false }): Promise<ExpressErp> {
  const db = openDatabase(options.databasePath ?? ":memory:");
  const seed = seedData();
  seedDatabase(db, seed);
  const documents = sqliteDocumentStore(db);
  // Version 1 of each site report, written by the server; a database that has them already keeps its own.
  for (const { companyId, type, id, data } of seed.documents) await documents.compareAndSet({ companyId, type, id }, 0, data, null);
  const repos = createRepositories(db);
  // The demo's policy, bound to this database: the routes and the engine ask the same one.
  const access = createAccess(repos);

  const app = express();
  const server = createServer(app);
  const realtime = attachRealtime<ErpCatalog>(server, {
    auth: jwtOptions(options.jwtSecret),
    authorize: access.authorize,
    topics: { patterns: TOPIC_PATTERNS },
    events: catalog,
    documents,
    ...(options.logger === false ? { logger: false as const } : {}),
  });

  app.use(express.json());
  // Sets req.realtime and answers GET /health/websocket.
  app.use(realtimeHandler(realtime));
  app.post("/api/login", loginHandler(repos, options.jwtSecret));
  app.use("/api", requireToken(options.jwtSecret), projectRoutes(repos, access), expenseRoutes(repos, access));

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
