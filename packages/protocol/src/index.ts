/**
 * The Truss wire protocol: the Socket.IO event names and payloads the server
 * (`@truss/core`) and `@truss/client` share, the closed list of error codes
 * with what a client does about each, the inbox id format, and the application's typed event catalog
 * (`defineEvents`), which server and browser code can then share, and `withinDeadline`, how both wait a bounded
 * time for code they do not control. No runtime dependencies, so a browser app that
 * imports it installs no server code.
 *
 * @module
 */
export * from "./errors.js";
export * from "./error-actions.js";
export * from "./data.js";
export * from "./events.js";
export * from "./inbox-ids.js";
export * from "./catalog.js";
export * from "./topics.js";
export * from "./scoped-presence.js";
export * from "./deadline.js";
