import { inboxUndeliveredSuite } from "@truss/conformance";
import { test } from "vitest";
import { postgresInboxStore } from "../../src/stores/inbox.js";
import { suiteOnFreshSchema } from "./nodes.js";

suiteOnFreshSchema("postgresInboxStore undelivered calls", (stores, schema) =>
  inboxUndeliveredSuite(test, (options) => stores.create((pool) => postgresInboxStore({ pool, schema: schema(), ...options })), {
    prefix: "postgresInboxStore",
    sharedBackend: true,
    teardown: stores.teardown,
  }),
);
