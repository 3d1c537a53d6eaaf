export * from "./tokens.js";
export * from "./engine.js";
