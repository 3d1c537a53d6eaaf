export * from "./tokens.js";
export * from "./engine.js";
export * from "./redis-server.js";
export * from "./open-handles.js";
export * from "./redis-cluster.js";
export * from "./health.js";
export * from "./adapter-scenarios.js";
export * from "./tcp-proxy.js";
