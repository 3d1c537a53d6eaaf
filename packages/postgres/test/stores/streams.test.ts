import { streamStoreSuite } from "@truss/conformance";
import { test } from "vitest";
import { postgresStreamStore } from "../../src/stores/streams.js";
import { suiteOnFreshSchema } from "./nodes.js";

suiteOnFreshSchema("postgresStreamStore", (stores, schema) =>
  streamStoreSuite(test, (options) => stores.create((pool) => postgresStreamStore({ pool, schema: schema(), ...options })), {
    prefix: "postgresStreamStore",
    sharedBackend: true,
    teardown: stores.teardown,
  }),
);
