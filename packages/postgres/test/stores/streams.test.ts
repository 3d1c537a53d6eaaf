import { streamStoreSuite } from "@truss/conformance";
import pg from "pg";
import { test } from "vitest";
import { postgresStreamStore } from "../../src/stores/streams.js";
import { SHARED_POSTGRES } from "../support/postgres.js";
import { suiteOnFreshSchema } from "./nodes.js";

suiteOnFreshSchema("postgresStreamStore", (stores, schema) =>
  streamStoreSuite(test, (options) => stores.create((pool) => postgresStreamStore({ pool, schema: schema(), ...options })), {
    prefix: "postgresStreamStore",
    sharedBackend: true,
    // PostgreSQL keeps its data across a restart: a database emptied (restored blank) is how it loses the streams.
    async restartEmpty(store) {
      const client = new pg.Client(SHARED_POSTGRES);
      await client.connect();
      try {
        const tables = ["streams", "stream_entries", "stream_keys", "stream_totals"].map((table) => `"${schema()}".${table}`);
        await client.query(`TRUNCATE ${tables.join(", ")}`);
      } finally {
        await client.end();
      }
      return store;
    },
    teardown: stores.teardown,
  }),
);
