import { documentStoreSuite } from "@truss/conformance";
import { afterAll, beforeAll, describe, test } from "vitest";
import { postgresDocumentStore } from "../../src/stores/documents.js";
import { freshSchema, type FreshSchema } from "../support/postgres.js";

describe("postgresDocumentStore", () => {
  let db: FreshSchema;
  beforeAll(async () => {
    db = await freshSchema();
  });
  afterAll(async () => {
    await db?.drop();
  });
  documentStoreSuite(test, (options) => postgresDocumentStore({ pool: db.pool, schema: db.schema, ...options }), {
    prefix: "postgresDocumentStore",
    sharedBackend: true,
  });
});
