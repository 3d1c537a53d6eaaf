import type { RealtimeEngine } from "./api.js";
import { createRealtimeEngine } from "./engine.js";
import type { EventCatalog } from "./events.js";
import { DEFAULT_HEALTH_PATH, healthResponse, PROMETHEUS_CONTENT_TYPE, type HealthReport } from "./health.js";
import type { RealtimeEngineOptions } from "./options.js";

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
  reply(engine: { health(): Promise<HealthReport>; metrics(): Promise<string> }): Promise<RealtimeHttpReply>;
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
        return { statusCode: 200, headers: { "content-type": PROMETHEUS_CONTENT_TYPE, "cache-control": NO_STORE }, body: await engine.metrics() };
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
