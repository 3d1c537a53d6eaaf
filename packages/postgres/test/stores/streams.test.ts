import { streamStoreSuite } from "@truss/conformance";
import { afterAll, beforeAll, describe, test } from "vitest";
import { postgresStreamStore } from "../../src/stores/streams.js";
import { freshSchema, type FreshSchema } from "../support/postgres.js";
import { poolPerStore } from "./nodes.js";

describe("postgresStreamStore", () => {
  let db: FreshSchema;
  beforeAll(async () => {
    db = await freshSchema();
  });
  afterAll(async () => {
    await db?.drop();
  });
  const stores = poolPerStore();
  streamStoreSuite(test, (options) => stores.create((pool) => postgresStreamStore({ pool, schema: db.schema, ...options })), {
    prefix: "postgresStreamStore",
    sharedBackend: true,
    teardown: stores.teardown,
  });
});
