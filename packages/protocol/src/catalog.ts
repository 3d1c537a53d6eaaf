import type { StandardSchemaV1 } from "@standard-schema/spec";
import { RESERVED_EVENTS } from "./events.js";

/** Event names mapped to their Standard Schema (zod, valibot, arktype… all fit). */
export type SchemaMap = Record<string, StandardSchemaV1>;

/**
 * The application's own events, in one place: what the server emits
 * (`server`) and what clients may send (`client`). Both sides derive their
 * types from it; client events are validated against their schema before a
 * handler sees them.
 */
export interface EventCatalog<TServer extends SchemaMap = SchemaMap, TClient extends SchemaMap = SchemaMap> {
  /** Events the server emits with `toCompany`/`toUser`. */
  readonly server: TServer;
  /** Events clients may send; each needs a handler (`engine.handle`). */
  readonly client: TClient;
}

/**
 * Declares the event catalog with its schemas, keeping the literal event
 * names for typing.
 *
 * @example
 * ```ts
 * const events = defineEvents({
 *   server: { "project:updated": z.object({ id: z.string(), name: z.string() }) },
 *   client: { "user:typing": z.object({ documentId: z.string() }) },
 * });
 * ```
 * @throws TypeError when an event reuses a name of the Truss protocol.
 */
export function defineEvents<const TServer extends SchemaMap = {}, const TClient extends SchemaMap = {}>(catalog: {
  server?: TServer;
  client?: TClient;
}): EventCatalog<TServer, TClient> {
  const server = (catalog.server ?? {}) as TServer;
  const client = (catalog.client ?? {}) as TClient;
  for (const name of [...Object.keys(server), ...Object.keys(client)]) {
    if (RESERVED_EVENTS.has(name)) {
      throw new TypeError(`"${name}" is a Truss protocol event; give the application event another name.`);
    }
  }
  return { server, client };
}

/** Names of the server-to-client events of a catalog. */
export type ServerEventName<C extends EventCatalog> = keyof C["server"] & string;
/** Names of the client-to-server events of a catalog. */
export type ClientEventName<C extends EventCatalog> = keyof C["client"] & string;
/** What the server passes when it emits event `E`. */
export type ServerEventData<C extends EventCatalog, E extends ServerEventName<C>> = StandardSchemaV1.InferInput<
  C["server"][E]
>;
/** What a handler receives for client event `E`, after validation. */
export type ClientEventData<C extends EventCatalog, E extends ClientEventName<C>> = StandardSchemaV1.InferOutput<
  C["client"][E]
>;
