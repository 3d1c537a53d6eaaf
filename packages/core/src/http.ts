/**
 * `@truss/core/http`: what a framework adapter needs to serve Truss, in one
 * layer above the engine. `mountRealtime` gives every adapter the same shape
 * (the engine, built or given; `attach` to the app's HTTP server unless it
 * already serves one; `close`; the health and metrics routes), so an adapter
 * only translates these into its framework's idioms.
 *
 * @module
 */
import type { Server as HttpServer } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type { RealtimeEngine } from "./engine/api.js";
import { createRealtimeEngine } from "./engine/engine.js";
import type { EventCatalog } from "./kernel/events.js";
import type { HealthReport } from "./engine/health.js";
import type { RealtimeEngineOptions } from "./engine/options.js";

/** The content type of `engine.metrics()` output with the default registry (prom-client's Prometheus text format); the metrics route uses the engine's registry content type (`metricsContentType`, on engines made by `createRealtimeEngine`) when the engine has it. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** The default path of the health route the framework adapters serve. */
export const DEFAULT_HEALTH_PATH = "/health/websocket";

/**
 * What a health route answers: 200 with the report when every store is up,
 * 503 when one is down or the engine is closing. Framework adapters serve
 * this as it is, so every framework reports health the same way. The route
 * is public (a load balancer's probe has no token), so a store's state goes
 * out without its error text, which names hosts, roles and databases;
 * `engine.health()` keeps it for the application's logs.
 */
export async function healthResponse(engine: { health(): Promise<HealthReport> }): Promise<{ statusCode: 200 | 503; body: HealthReport }> {
  const report = await engine.health();
  const stores = Object.fromEntries(Object.entries(report.stores).map(([name, { state }]) => [name, { state }])) as HealthReport["stores"];
  return { statusCode: report.status === "ok" ? 200 : 503, body: { ...report, stores } };
}


/**
 * What a framework adapter serves: an engine built from these options, or one
 * built elsewhere (`{ engine }`, e.g. created in a module your services import).
 */
export type RealtimeEngineSource<C extends EventCatalog = EventCatalog> = RealtimeEngineOptions<C> | { engine: RealtimeEngine<C> };

/** The HTTP routes a framework adapter serves beside the Socket.IO endpoint. */
export interface RealtimeHttpOptions {
  /** Path of the health route (JSON, 503 when a store is down); `false` serves none. Default `/health/websocket`. */
  healthPath?: string | false;
  /** Path of the Prometheus metrics route. Default: none, since metrics reveal load and are often kept off the public port. */
  metricsPath?: string | false;
}

/** A framework-neutral HTTP answer; each adapter writes it with its own response API. */
export interface RealtimeHttpReply {
  /** 200, or 503 from the health route when a store is down or the engine is closing. */
  statusCode: number;
  /** `content-type` and `cache-control`. */
  headers: Record<string, string>;
  /** The serialized body. */
  body: string;
}

/** One `GET` route an adapter registers in its framework. */
export interface RealtimeHttpRoute {
  /** Which route this is, for naming it in the framework (logs, route listings). */
  name: "health" | "metrics";
  /** The path, starting with `/`. */
  path: string;
  /** Builds the answer from the engine's current state. */
  reply(engine: { health(): Promise<HealthReport>; metrics(): Promise<string>; readonly metricsContentType?: string }): Promise<RealtimeHttpReply>;
}

// Probes and scrapers must see the current state, never a cached copy.
const NO_STORE = "no-store";

/**
 * The health and metrics routes for these options, so that every framework
 * answers the same paths with the same status codes, headers and bodies.
 *
 * @throws TypeError when a path does not start with `/` or both are the same.
 */
export function realtimeRoutes(options: RealtimeHttpOptions = {}): RealtimeHttpRoute[] {
  const healthPath = options.healthPath ?? DEFAULT_HEALTH_PATH;
  const metricsPath = options.metricsPath ?? false;
  const routes: RealtimeHttpRoute[] = [];
  if (healthPath !== false) {
    routes.push({
      name: "health",
      path: checkPath("healthPath", healthPath),
      async reply(engine) {
        const { statusCode, body } = await healthResponse(engine);
        return { statusCode, headers: { "content-type": "application/json; charset=utf-8", "cache-control": NO_STORE }, body: JSON.stringify(body) };
      },
    });
  }
  if (metricsPath !== false) {
    if (metricsPath === healthPath) throw new TypeError(`healthPath and metricsPath are both "${metricsPath}"; give each its own path.`);
    routes.push({
      name: "metrics",
      path: checkPath("metricsPath", metricsPath),
      async reply(engine) {
        return { statusCode: 200, headers: { "content-type": engine.metricsContentType ?? PROMETHEUS_CONTENT_TYPE, "cache-control": NO_STORE }, body: await engine.metrics() };
      },
    });
  }
  return routes;
}

/**
 * The engine an adapter serves: `source.engine` when given, otherwise a new
 * engine from the options (without the adapter's own HTTP options).
 */
export function engineFrom<C extends EventCatalog = EventCatalog>(source: RealtimeEngineSource<C> & RealtimeHttpOptions): RealtimeEngine<C> {
  if (source && "engine" in source) return source.engine;
  const { healthPath: _health, metricsPath: _metrics, ...options } = (source ?? {}) as RealtimeEngineOptions<C> & RealtimeHttpOptions;
  return createRealtimeEngine<C>(options);
}

function checkPath(name: string, path: string): string {
  if (typeof path !== "string" || !path.startsWith("/")) {
    throw new TypeError(`${name} must be a path starting with "/" (or false to serve none); got ${JSON.stringify(path)}.`);
  }
  return path;
}

/** The engine an adapter serves, with everything the adapter does with it. */
export interface RealtimeMount<C extends EventCatalog = EventCatalog> {
  /** The engine: built from the options, or the one given as `{ engine }`. */
  readonly engine: RealtimeEngine<C>;
  /** The routes to register in the framework (health, and metrics when named). */
  readonly routes: readonly RealtimeHttpRoute[];
  /** Serves Truss on the app's HTTP server, unless the engine already serves one (a prebuilt engine may); returns the engine. */
  attach(server: HttpServer | HttpsServer): RealtimeEngine<C>;
  /** Closes the engine: clients hear `SERVER_SHUTTING_DOWN`. Call it before the HTTP server closes. */
  close(): Promise<void>;
}

/**
 * Everything a framework adapter does with its options, in one shape: the
 * engine, attaching it to the app's server, closing it, and its routes.
 *
 * @example
 * ```ts
 * const realtime = mountRealtime(options);
 * realtime.attach(app.server);
 * for (const route of realtime.routes) app.get(route.path, async () => write(await route.reply(realtime.engine)));
 * onShutdown(() => realtime.close());
 * ```
 * @throws TypeError for invalid route paths (see {@link realtimeRoutes}).
 */
export function mountRealtime<C extends EventCatalog = EventCatalog>(source: RealtimeEngineSource<C> & RealtimeHttpOptions): RealtimeMount<C> {
  const routes = realtimeRoutes(source);
  const engine = engineFrom<C>(source);
  return {
    engine,
    routes,
    attach(server) {
      if (!engine.io) engine.attach(server);
      return engine;
    },
    close: () => engine.close(),
  };
}
