/**
 * The construction ERP as a Fastify app: login, the company-scoped REST API,
 * the Truss engine on the same port, and the live dashboard.
 *
 * @module
 */
import type { Agent } from "node:https";
import { relay, type DocumentStore, type OutboxRelay, type OutboxRelayOptions, type RealtimeEngine, type UndeliveredOptions } from "@truss/core";
import { migrate, postgresStores } from "@truss/postgres";
import pg from "pg";
import { trussFastify } from "@truss/fastify";
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import { createAsyncAccess } from "./access.js";
import { memberAuthenticator } from "./auth.js";
import type { ErpCatalog } from "./catalog.js";
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
import { registerPushRoutes } from "./routes/push.js";
import { registerLoginRoute, registerSessionRoutes } from "./routes/session.js";
import { registerTaskRoutes } from "./routes/tasks.js";
import { registerUserRoutes } from "./routes/users.js";
import { demoLogins, seedData, type SeedData } from "./seed.js";
import { sqliteDocumentStore } from "./sqlite-document-store.js";
import { postgresErpData } from "./store/postgres.js";
import { preparePostgres } from "./store/postgres-schema.js";
import { sqliteErpData } from "./store/sqlite.js";
import type { BeforeCommit, ErpData } from "./store/types.js";
import { erpUndelivered } from "./undelivered.js";
import { generateVapidKeys, webPushSender, type VapidKeys } from "./web-push.js";

/** Options of {@link buildApp}. */
export interface BuildAppOptions {
  /** The HS256 secret for login tokens and socket handshakes. */
  jwtSecret: string;
  /** The SQLite file; default `":memory:"`, a fresh private database. Not used with `databaseUrl`. */
  databasePath?: string;
  /**
   * A PostgreSQL URL (`postgres://...`): the ERP's tables, and Truss's
   * outbox, documents, inboxes and streams (schema `trussSchema`), in that
   * database, created at start-up. Without it, the SQLite file.
   */
  databaseUrl?: string | undefined;
  /** The schema of Truss's tables on PostgreSQL; default `"truss"`. */
  trussSchema?: string;
  /** The outbox relay's batch size, poll interval and backoff. */
  relay?: OutboxRelayOptions;
  /** Runs inside every announcing transaction before it commits; a throw rolls it back (tests use it to stand for a failure). */
  beforeCommit?: BeforeCommit;
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
  /** Messages no device took in time: pushed, or e-mailed (see `undelivered.ts`). */
  undelivered?: ErpUndeliveredSettings;
}

/** When and how the ERP tells a user about a message none of their devices took. */
export interface ErpUndeliveredSettings {
  /** How long a message waits for a device before it is pushed or e-mailed, in ms; default a minute. */
  afterMs?: number;
  /** How often each node looks for due messages, in ms; default 1 s. */
  pollIntervalMs?: number;
  /** The server's VAPID keys; default a pair generated for this process (browsers must subscribe again after a restart). */
  vapid?: VapidKeys;
  /** The HTTPS agent the push requests go through (tests trust their local push service's certificate with it). */
  pushAgent?: Agent;
  /**
   * Push services accepted besides the browsers' own (`PUSH_SERVICE_HOSTS`),
   * by origin: `["https://push.example.test:8443"]`. Tests add their local
   * one; default none.
   */
  pushOrigins?: readonly string[];
}

/** The app, with typed handles on what tests and the server entry point need. */
export interface ErpApp {
  /** The Fastify app; `app.realtime` is the engine. Call `listen` yourself. */
  app: FastifyInstance;
  /** The same engine as `app.realtime`, typed with the ERP's catalog. */
  realtime: RealtimeEngine<ErpCatalog>;
  /** The SQLite connection, or `null` on PostgreSQL; closed by `app.close()`. */
  db: Db | null;
  /** The data of record, on either database; closed by `app.close()`. */
  data: ErpData;
  /** The relay that publishes the outbox through the engine; stopped by `app.close()`. */
  outboxRelay: OutboxRelay;
  /** Where presence and inboxes live. */
  storage: "memory" | "redis";
  /** Where the ERP's tables and documents live. */
  database: "sqlite" | "postgres";
  /** The engine's `undelivered` option: its handler pushes or e-mails a message no device took. */
  undelivered: UndeliveredOptions;
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
  const seed = options.seed ?? seedData();
  const { data, documents, durable, db } = await openErpDatabase(options, seed);
  const repos = data;
  // One authenticator and one policy for both doors: the socket and the REST API.
  const authenticator = memberAuthenticator(options.jwtSecret, (companyId, userId) => repos.users.get(companyId, userId));
  const access = createAsyncAccess(repos);
  const settings = options.undelivered ?? {};
  const push = webPushSender({ vapid: settings.vapid ?? generateVapidKeys(), agent: settings.pushAgent, extraOrigins: settings.pushOrigins });
  const undelivered = erpUndelivered({ data, push, afterMs: settings.afterMs, pollIntervalMs: settings.pollIntervalMs });
  let realtimeSetup;
  try {
    const engine = { ...options.engine, undelivered };
    realtimeSetup = await createErpRealtime({ authenticator, access, documents, durable, redisUrl: options.redisUrl, engine });
  } catch (error) {
    await data.close();
    throw error;
  }
  const { engine: realtime, storage, disconnect } = realtimeSetup;
  // Publishes what the routes wrote to the outbox; starts when the engine is attached and stops with it.
  const outboxRelay = relay(realtime, data.outboxSource(), options.relay);

  const app = Fastify({ logger: options.logger ?? false });
  installErrorHandler(app);
  await app.register(trussFastify, { engine: realtime, metricsPath: "/metrics" });
  // The plugin closes the engine in preClose; the stores it used go after.
  app.addHook("onClose", async () => {
    await disconnect();
    await data.close();
  });

  const context: RouteContext = { repos, access, realtime, jwtSecret: options.jwtSecret };
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
      registerPushRoutes(api, context, push);
    },
    { prefix: "/api" },
  );
  registerDashboardRoutes(app, options.assets ?? { publicDir: PUBLIC_DIR, bundleDir: BUNDLE_DIR });
  return { app, realtime, db, data, outboxRelay, storage, database: data.kind, undelivered };
}

/**
 * Opens the database of record and seeds an empty one: PostgreSQL when
 * `databaseUrl` is set (Truss's tables migrated, then the ERP's), otherwise
 * the SQLite file with its own outbox table.
 */
async function openErpDatabase(
  options: BuildAppOptions,
  seed: SeedData | false,
): Promise<{ data: ErpData; documents: DocumentStore; durable?: ReturnType<typeof postgresStores>; db: Db | null }> {
  const limits = options.engine?.limits;
  const outboxLimits = limits ? { ...(limits.maxDepth === undefined ? {} : { maxDepth: limits.maxDepth }), ...(limits.maxMessageBytes === undefined ? {} : { maxMessageBytes: limits.maxMessageBytes }) } : undefined;
  if (options.databaseUrl) {
    // A route waits at most 5 s for a connection while PostgreSQL is down, then fails instead of hanging.
    const pool = new pg.Pool({ connectionString: options.databaseUrl, connectionTimeoutMillis: 5000 });
    try {
      const schema = options.trussSchema ?? "truss";
      await migrate(pool, { schema });
      await preparePostgres(pool, seed);
      const stores = postgresStores(pool, { schema });
      if (seed) await seedDocuments(stores.documents, seed);
      const data = postgresErpData(pool, { trussSchema: schema, ...(outboxLimits ? { limits: outboxLimits } : {}), ...(options.beforeCommit ? { beforeCommit: options.beforeCommit } : {}) });
      return { data, documents: stores.documents, durable: stores, db: null };
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw error;
    }
  }
  const db = openDatabase(options.databasePath ?? ":memory:");
  const documents = sqliteDocumentStore(db);
  if (seed) {
    seedDatabase(db, seed);
    await seedDocuments(documents, seed);
  }
  const data = sqliteErpData(db, documents, { ...(outboxLimits ? { limits: outboxLimits } : {}), ...(options.beforeCommit ? { beforeCommit: options.beforeCommit } : {}) });
  return { data, documents, db };
}

/** Creates the seed's documents that do not exist yet, as server-side writes. */
async function seedDocuments(documents: DocumentStore, seed: SeedData): Promise<void> {
  for (const { companyId, type, id, data } of seed.documents) {
    const key = { companyId, type, id };
    if (!(await documents.get(key))) await documents.compareAndSet(key, 0, data, null);
  }
}
