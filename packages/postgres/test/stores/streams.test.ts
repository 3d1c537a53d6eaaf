import { streamStoreSuite } from "@truss/conformance";
import { afterAll, beforeAll, describe, test } from "vitest";
import { postgresStreamStore } from "../../src/stores/streams.js";
import { freshSchema, type FreshSchema } from "../support/postgres.js";

describe("postgresStreamStore", () => {
  let db: FreshSchema;
  beforeAll(async () => {
    db = await freshSchema();
  });
  afterAll(async () => {
    await db?.drop();
  });
  streamStoreSuite(test, (options) => postgresStreamStore({ pool: db.pool, schema: db.schema, ...options }), {
    prefix: "postgresStreamStore",
    sharedBackend: true,
  });
});
