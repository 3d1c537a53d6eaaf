import type { Server as HttpServer } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type { RealtimeEngine } from "@truss/core";
import type { EventCatalog } from "@truss/protocol";
import { mountRealtime, realtimeRoutes, type RealtimeEngineSource, type RealtimeHttpOptions } from "@truss/core/http";
import type { RequestHandler } from "express";

declare global {
  // Express's own extension point for request properties (express-serve-static-core).
  namespace Express {
    interface Request {
      /**
       * The Truss engine, set by {@link realtimeHandler}: emit from any route with
       * `req.realtime.toCompany(...)` or `toTopic(...)`, revoke with `disconnectUser(...)`.
       */
      realtime: RealtimeEngine;
    }
  }
}

/**
 * Serves Truss on the HTTP server that runs your Express app, so REST and
 * Socket.IO share one port. Pass engine options, or `{ engine }` to serve one
 * you built. Returns the engine; on shutdown, `await engine.close()` (it tells
 * clients `SERVER_SHUTTING_DOWN` and ends their connections) and then
 * `server.close()`.
 *
 * @example
 * ```ts
 * const app = express();
 * const server = http.createServer(app);
 * const realtime = attachRealtime(server, { auth: { secret: process.env.JWT_SECRET!, algorithms: ["HS256"] } });
 * app.use(realtimeHandler(realtime));
 * server.listen(3000);
 * ```
 */
export function attachRealtime<C extends EventCatalog = EventCatalog>(
  server: HttpServer | HttpsServer,
  options: RealtimeEngineSource<C>,
): RealtimeEngine<C> {
  return mountRealtime<C>(options).attach(server);
}

/**
 * Express middleware that puts the engine on `req.realtime` for the routes
 * after it, and answers `GET` (and `HEAD`) on the health path (default
 * `/health/websocket`) and, when named, the Prometheus metrics path. Paths
 * are relative to where the handler is mounted.
 */
export function realtimeHandler(engine: RealtimeEngine<any>, options: RealtimeHttpOptions = {}): RequestHandler {
  const routes = new Map(realtimeRoutes(options).map((route) => [route.path, route]));
  return (req, res, next) => {
    req.realtime = engine;
    const route = req.method === "GET" || req.method === "HEAD" ? routes.get(req.path) : undefined;
    if (!route) return next();
    route.reply(engine).then((answer) => {
      // A Buffer, so Express sends the content type as given: for a string, Express 4
      // rewrites it (`charset` moved before the Prometheus `version` parameter).
      res.status(answer.statusCode).set(answer.headers).send(Buffer.from(answer.body));
    }, next);
  };
}

export type { RealtimeEngine } from "@truss/core";
export type { RealtimeEngineSource, RealtimeHttpOptions } from "@truss/core/http";
