import { inboxSuite } from "@truss/conformance";
import { afterAll, beforeAll, describe, test } from "vitest";
import { postgresInboxStore } from "../../src/stores/inbox.js";
import { freshSchema, type FreshSchema } from "../support/postgres.js";
import { poolPerStore } from "./nodes.js";

describe("postgresInboxStore", () => {
  let db: FreshSchema;
  beforeAll(async () => {
    db = await freshSchema();
  });
  afterAll(async () => {
    await db?.drop();
  });
  const stores = poolPerStore();
  inboxSuite(test, (options) => stores.create((pool) => postgresInboxStore({ pool, schema: db.schema, ...options })), {
    prefix: "postgresInboxStore",
    sharedBackend: true,
    teardown: stores.teardown,
  });
});
