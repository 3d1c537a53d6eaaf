/**
 * The construction ERP as a Fastify app: login, the company-scoped REST API,
 * the Truss engine on the same port, and the live dashboard.
 *
 * @module
 */
import type { RealtimeEngine } from "@truss/core";
import { trussFastify } from "@truss/fastify";
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import { createAccess } from "./access.js";
import { memberAuthenticator } from "./auth.js";
import type { ErpCatalog } from "./catalog.js";
import { createRepositories } from "./data/index.js";
import { openDatabase, seedDatabase, type Db } from "./db.js";
import { installErrorHandler } from "./http-errors.js";
import { BUNDLE_DIR, PUBLIC_DIR } from "./paths.js";
import { createErpRealtime, type ErpEngineOptions } from "./realtime.js";
import type { RouteContext } from "./routes/context.js";
import { requireToken } from "./routes/authenticate.js";
import { registerDashboardRoutes, type DashboardAssets } from "./routes/dashboard.js";
import { registerDocumentRoutes } from "./routes/documents.js";
import { registerExpenseRoutes } from "./routes/expenses.js";
import { registerInventoryRoutes } from "./routes/inventory.js";
import { registerInvoiceRoutes } from "./routes/invoices.js";
import { registerProjectRoutes } from "./routes/projects.js";
import { registerLoginRoute, registerSessionRoutes } from "./routes/session.js";
import { registerTaskRoutes } from "./routes/tasks.js";
import { registerUserRoutes } from "./routes/users.js";
import { demoLogins, seedData, type SeedData } from "./seed.js";
import { sqliteDocumentStore, type SqliteDocumentStore } from "./sqlite-document-store.js";

/** Options of {@link buildApp}. */
export interface BuildAppOptions {
  /** The HS256 secret for login tokens and socket handshakes. */
  jwtSecret: string;
  /** The SQLite file; default `":memory:"`, a fresh private database. */
  databasePath?: string;
  /** Seed an empty database with this data (default: the demo seed); `false` to start empty. */
  seed?: SeedData | false;
  /** A Redis URL for presence, inboxes and the Socket.IO adapter; in-memory when absent. */
  redisUrl?: string | undefined;
  /** Fastify's logger option; default off. */
  logger?: FastifyServerOptions["logger"];
  /** Where the dashboard's files are; default the example's `public/` and `dist/public/`. */
  assets?: DashboardAssets;
  /** Further engine options: presence timing, limits, the engine's logger. */
  engine?: ErpEngineOptions;
}

/** The app, with typed handles on what tests and the server entry point need. */
export interface ErpApp {
  /** The Fastify app; `app.realtime` is the engine. Call `listen` yourself. */
  app: FastifyInstance;
  /** The same engine as `app.realtime`, typed with the ERP's catalog. */
  realtime: RealtimeEngine<ErpCatalog>;
  /** The SQLite connection; closed by `app.close()`. */
  db: Db;
  /** Where presence and inboxes live. */
  storage: "memory" | "redis";
}

/**
 * Builds the ERP without listening, so tests can start it on port 0 with an
 * in-memory database. `app.close()` closes the engine (clients are told
 * `SERVER_SHUTTING_DOWN`), then Redis and the database.
 *
 * @example
 * ```ts
 * const { app } = await buildApp({ jwtSecret: "test-secret" });
 * await app.listen({ port: 0, host: "127.0.0.1" });
 * ```
 */
export async function buildApp(options: BuildAppOptions): Promise<ErpApp> {
  const db = openDatabase(options.databasePath ?? ":memory:");
  const documents = sqliteDocumentStore(db);
  const seed = options.seed ?? seedData();
  if (seed) {
    seedDatabase(db, seed);
    await seedDocuments(documents, seed);
  }
  const repos = createRepositories(db);
  // One authenticator and one policy for both doors: the socket and the REST API.
  const authenticator = memberAuthenticator(options.jwtSecret, (companyId, userId) => repos.users.get(companyId, userId));
  const access = createAccess(repos);
  let realtimeSetup;
  try {
    realtimeSetup = await createErpRealtime({ authenticator, access, documents, redisUrl: options.redisUrl, engine: options.engine });
  } catch (error) {
    db.close();
    throw error;
  }
  const { engine: realtime, storage, disconnect } = realtimeSetup;

  const app = Fastify({ logger: options.logger ?? false });
  installErrorHandler(app);
  await app.register(trussFastify, { engine: realtime, metricsPath: "/metrics" });
  // The plugin closes the engine in preClose; the stores it used go after.
  app.addHook("onClose", async () => {
    await disconnect();
    db.close();
  });

  const context: RouteContext = { repos, access, realtime, documents, jwtSecret: options.jwtSecret };
  registerLoginRoute(app, context, seed ? demoLogins(seed) : null);
  await app.register(
    async (api) => {
      requireToken(api, authenticator);
      registerSessionRoutes(api, context);
      registerUserRoutes(api, context);
      registerProjectRoutes(api, context);
      registerTaskRoutes(api, context);
      registerExpenseRoutes(api, context);
      registerInvoiceRoutes(api, context);
      registerInventoryRoutes(api, context);
      registerDocumentRoutes(api, context);
    },
    { prefix: "/api" },
  );
  registerDashboardRoutes(app, options.assets ?? { publicDir: PUBLIC_DIR, bundleDir: BUNDLE_DIR });
  return { app, realtime, db, storage };
}

/** Creates the seed's documents that do not exist yet, as server-side writes. */
async function seedDocuments(documents: SqliteDocumentStore, seed: SeedData): Promise<void> {
  for (const { companyId, type, id, data } of seed.documents) {
    const key = { companyId, type, id };
    if (!(await documents.get(key))) await documents.compareAndSet(key, 0, data, null);
  }
}
