/**
 * `@truss/react`: a provider and hooks over `@truss/client` for React 18
 * and 19. Hooks read the client's own state through
 * `useSyncExternalStore`, share subscriptions between components
 * (reference-counted), and open nothing during a server-side render.
 *
 * @module
 */
export { TrussProvider, useTrussClient } from "./context.js";
export type { TrussProviderProps } from "./context.js";
export { useSync, useStatus } from "./sync.js";
export { useEvent, useEventHandlers } from "./events.js";
export { useTopic } from "./topic.js";
export { useDocument } from "./document.js";
export type { DocumentState } from "./document.js";
export { usePresence } from "./presence.js";
export type { CompanyPresence, ScopedPresence } from "./presence.js";
export { useOutbox } from "./outbox.js";
export type { OutboxState } from "./outbox.js";
export type { SubscriptionState } from "./shared-subscriptions.js";
export type { EventHandler, EventHandlers, Register, RegisteredEvents, ServerEvent } from "./register.js";
