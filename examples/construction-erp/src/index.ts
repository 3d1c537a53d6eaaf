/**
 * The construction ERP example, as a library for its tests and for the
 * Express and NestJS examples, which reuse its catalog, seed and auth.
 *
 * @module
 */
export { buildApp } from "./app.js";
export type { BuildAppOptions, ErpApp } from "./app.js";
export * from "./catalog.js";
export * from "./seed.js";
export * from "./auth.js";
export * from "./policy.js";
export * from "./topics.js";
export { createAccess } from "./access.js";
export type { ErpAccess, UserRef } from "./access.js";
export { openDatabase, seedDatabase } from "./db.js";
export type { Db } from "./db.js";
export { sqliteDocumentStore } from "./sqlite-document-store.js";
export type { DocumentSummary, SqliteDocumentStore, SqliteDocumentStoreOptions } from "./sqlite-document-store.js";
