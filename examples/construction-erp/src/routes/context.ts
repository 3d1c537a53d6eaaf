import type { Principal, RealtimeEngine } from "@truss/core";
import type { ErpAccess } from "../access.js";
import type { ErpCatalog } from "../catalog.js";
import type { Repositories } from "../data/index.js";
import type { SqliteDocumentStore } from "../sqlite-document-store.js";

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
  repos: Repositories;
  /** The policy every route asks before it reads or changes a row; the engine asks the same one. */
  access: ErpAccess;
  realtime: RealtimeEngine<ErpCatalog>;
  documents: SqliteDocumentStore;
  /** Signs login tokens. */
  jwtSecret: string;
}
