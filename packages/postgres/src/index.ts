/**
 * PostgreSQL for Truss: an outbox the application writes in its own
 * transaction, relayed to devices by every engine node, and the SQL
 * migrations that create its tables.
 *
 * @packageDocumentation
 */
export { migrate, migrations } from "./migrate.js";
export type { MigrateOptions, Migration } from "./migrate.js";
export { DEFAULT_SCHEMA } from "./schema.js";
export { OUTBOX_CHANNEL, postgresOutbox } from "./outbox.js";
export type { OutboxEmitter, OutboxQueryable, OutboxWriter, PostgresOutbox, PostgresOutboxOptions } from "./outbox.js";
export type { PostgresOutboxSourceOptions } from "./source.js";
export {
  DEFAULT_STORE_TIMEOUT_MS,
  DEFAULT_SWEEP_BATCH,
  DEFAULT_SWEEP_INTERVAL_MS,
  postgresDocumentStore,
  postgresInboxStore,
  postgresStores,
  postgresStreamStore,
} from "./stores/index.js";
export type {
  PostgresDocumentStoreOptions,
  PostgresInboxStoreOptions,
  PostgresStoreConnection,
  PostgresStores,
  PostgresStoresOptions,
  PostgresStreamStoreOptions,
  SweepOptions,
} from "./stores/index.js";
