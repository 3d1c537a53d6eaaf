import { documentStoreSuite } from "@truss/conformance";
import { afterAll, beforeAll, describe, test } from "vitest";
import { postgresDocumentStore } from "../../src/stores/documents.js";
import { freshSchema, type FreshSchema } from "../support/postgres.js";
import { poolPerStore } from "./nodes.js";

describe("postgresDocumentStore", () => {
  let db: FreshSchema;
  beforeAll(async () => {
    db = await freshSchema();
  });
  afterAll(async () => {
    await db?.drop();
  });
  const stores = poolPerStore();
  documentStoreSuite(test, (options) => stores.create((pool) => postgresDocumentStore({ pool, schema: db.schema, ...options })), {
    prefix: "postgresDocumentStore",
    sharedBackend: true,
    teardown: stores.teardown,
  });
});
