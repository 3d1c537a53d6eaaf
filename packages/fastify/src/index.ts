import type { RealtimeEngine } from "@truss/core";
import { mountRealtime, type RealtimeEngineSource, type RealtimeHttpOptions } from "@truss/core/http";
import type { FastifyPluginAsync } from "fastify";
import fastifyPlugin from "fastify-plugin";

declare module "fastify" {
  interface FastifyInstance {
    /**
     * The Truss engine serving Socket.IO on this app's server: emit from routes
     * with `app.realtime` (or `this.realtime`), and revoke access with
     * `app.realtime.disconnectUser(...)` or `unsubscribeUser(...)`.
     */
    realtime: RealtimeEngine;
  }
}

/**
 * Options of {@link trussFastify}: the engine options of `@truss/core` (or a
 * prebuilt `{ engine }`), plus the health and metrics paths.
 */
export type TrussFastifyOptions = RealtimeEngineSource & RealtimeHttpOptions;

const plugin: FastifyPluginAsync<TrussFastifyOptions> = async (app, options) => {
  // Registered twice, the second would attach a second engine before Fastify refused its decorator.
  if (app.hasDecorator("realtime")) throw new Error("@truss/fastify is already registered on this app; register it once, at the root.");
  const realtime = mountRealtime(options);
  // Same server and port as the REST routes.
  app.decorate("realtime", realtime.attach(app.server));
  // preClose runs before the server stops listening, so clients hear SERVER_SHUTTING_DOWN
  // and their upgraded sockets end instead of holding `app.close()` open.
  app.addHook("preClose", realtime.close);
  for (const route of realtime.routes) {
    app.get(route.path, async (_request, reply) => {
      const answer = await route.reply(realtime.engine);
      return reply.code(answer.statusCode).headers(answer.headers).send(answer.body);
    });
  }
};

/**
 * Serves Truss on the Fastify app's own HTTP server and decorates
 * `app.realtime`. Register it once, at the root (it is not encapsulated):
 *
 * @example
 * ```ts
 * await app.register(trussFastify, { auth: { secret: process.env.JWT_SECRET!, algorithms: ["HS256"] } });
 * app.patch("/projects/:id", async (request) => {
 *   const project = await projects.update(request.params.id, request.body);
 *   app.realtime.toCompany(project.companyId).emit("project:updated", project);
 *   return project;
 * });
 * ```
 */
export const trussFastify = fastifyPlugin(plugin, { fastify: "^4.28.0 || ^5.0.0", name: "@truss/fastify" });

export default trussFastify;

export type { RealtimeEngine } from "@truss/core";
export type { RealtimeEngineSource, RealtimeHttpOptions } from "@truss/core/http";
