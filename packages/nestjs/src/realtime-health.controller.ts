import { Controller, Get, Inject, Res, type Type } from "@nestjs/common";
import { HttpAdapterHost } from "@nestjs/core";
import type { RealtimeEngine } from "@truss/core";
import { realtimeRoutes, type RealtimeHttpOptions, type RealtimeHttpRoute } from "@truss/core/http";
import { REALTIME_ENGINE } from "./tokens.js";

/**
 * Builds the controller serving the health route and, when named, the
 * metrics route. Paths are chosen per import, so the class is made here and
 * decorated in code; it answers through Nest's HTTP adapter, so it works on
 * the Express and the Fastify platform alike.
 */
export function createRealtimeHealthController(options: RealtimeHttpOptions): Type | undefined {
  const routes = realtimeRoutes(options);
  if (routes.length === 0) return undefined;

  @Controller()
  class RealtimeHealthController {
    constructor(
      @Inject(REALTIME_ENGINE) readonly engine: RealtimeEngine,
      @Inject(HttpAdapterHost) readonly host: HttpAdapterHost,
    ) {}
  }
  for (const route of routes) addRoute(RealtimeHealthController.prototype, route);
  return RealtimeHealthController;
}

function addRoute(prototype: object, route: RealtimeHttpRoute): void {
  const descriptor: PropertyDescriptor = {
    async value(this: { engine: RealtimeEngine; host: HttpAdapterHost }, response: unknown) {
      const answer = await route.reply(this.engine);
      const http = this.host.httpAdapter;
      for (const [name, value] of Object.entries(answer.headers)) http.setHeader(response, name, value);
      http.reply(response, answer.body, answer.statusCode);
    },
    writable: true,
    configurable: true,
  };
  Object.defineProperty(prototype, route.name, descriptor);
  Get(route.path)(prototype, route.name, descriptor);
  // The status code depends on the answer (503 when a store is down), so the handler writes the response itself.
  Res()(prototype, route.name, 0);
}
