import type { EventCatalog, ServerEventHandler } from "@truss/client";

/**
 * Tells the hooks your server's event catalog, once for the whole app, so
 * `useEvent` and `useTopic` type each event's data:
 *
 * ```ts
 * declare module "@truss/react" {
 *   interface Register {
 *     events: typeof events; // the server's defineEvents(...), imported as a type
 *   }
 * }
 * ```
 *
 * Without it, event names are any string and their data `unknown`.
 */
export interface Register {}

/** The catalog given to {@link Register}, or any catalog when none was. */
export type RegisteredEvents = Register extends { events: infer C extends EventCatalog } ? C : EventCatalog;

/** A server event of the registered catalog. */
export type ServerEvent = keyof RegisteredEvents["server"] & string;

/** A handler of server event `E`, as `client.on` takes it: `message` is set when the event came through the inbox. */
export type EventHandler<E extends ServerEvent> = ServerEventHandler<RegisteredEvents, E>;

/** Handlers by server event, as `useTopic` takes them. */
export type EventHandlers = { [E in ServerEvent]?: EventHandler<E> };
