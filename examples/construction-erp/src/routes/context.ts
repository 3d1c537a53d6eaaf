import type { Principal, RealtimeEngine } from "@truss/core";
import type { AsyncErpAccess } from "../access.js";
import type { ErpCatalog } from "../catalog.js";
import type { ErpData } from "../store/types.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Who sent the request, from the verified bearer token; set on every `/api` route but login. */
    principal: Principal;
  }
}

/**
 * What the route modules share. `realtime` is the same engine the Fastify
 * plugin puts on `app.realtime`, kept here with the catalog's types so every
 * `emit` is checked against it.
 */
export interface RouteContext {
  /** The data of record, on SQLite or PostgreSQL; a write that announces something writes its events to the outbox in its transaction. */
  repos: ErpData;
  /** The policy every route asks before it reads or changes a row; the engine asks the same one. */
  access: AsyncErpAccess;
  realtime: RealtimeEngine<ErpCatalog>;
  /** Signs login tokens. */
  jwtSecret: string;
}
