import { documentStoreSuite } from "@truss/conformance";
import { test } from "vitest";
import { postgresDocumentStore } from "../../src/stores/documents.js";
import { suiteOnFreshSchema } from "./nodes.js";

suiteOnFreshSchema("postgresDocumentStore", (stores, schema) =>
  documentStoreSuite(test, (options) => stores.create((pool) => postgresDocumentStore({ pool, schema: schema(), ...options })), {
    prefix: "postgresDocumentStore",
    sharedBackend: true,
    teardown: stores.teardown,
  }),
);
