/**
 * PostgreSQL for Truss: an outbox the application writes in its own
 * transaction, relayed to devices by every engine node, and the SQL
 * migrations that create its tables.
 *
 * @packageDocumentation
 */
export {};
