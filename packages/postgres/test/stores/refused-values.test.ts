import { connectAs, request, startTestServer, type TestServer } from "@truss/test-utils";
import type { Socket as ClientSocket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { postgresStores } from "../../src/stores/index.js";
import { freshSchema, randomCjk, type FreshSchema } from "../support/postgres.js";

/**
 * Values PostgreSQL refuses whatever the moment (too long for an index row,
 * U+0000 in text) are the caller's to fix, not an outage: the engine answers
 * `INVALID_PAYLOAD`, which neither clients nor the outbox relay retry, and
 * counts no store error.
 */
describe("values PostgreSQL refuses for good", () => {
  let db: FreshSchema;
  let server: TestServer;
  let socket: ClientSocket | undefined;

  beforeAll(async () => {
    db = await freshSchema();
    server = await startTestServer({ ...postgresStores(db.pool, { schema: db.schema }), authorize: () => true });
  });
  afterAll(async () => {
    socket?.close();
    await server?.close();
    await db?.drop();
  });

  test("a user id too long for the inbox's index: the store rejects INVALID_PAYLOAD, not an outage; the engine refuses such an id before", async () => {
    // The engine caps ids at 256 characters, well inside an index row; a store used on its own (a relay, a script) is not capped.
    const { inbox } = postgresStores(db.pool, { schema: db.schema });
    const error = await inbox.append({ companyId: "acme", userId: randomCjk(1000) }, "expense:approved", { expenseId: "e-1" }).then(
      () => undefined,
      (rejection: unknown) => rejection,
    );
    // The message reaches clients and logs of other services: it names no table, index or SQLSTATE. PostgreSQL's words stay in `cause`.
    expect(error).toMatchObject({ code: "INVALID_PAYLOAD", cause: { code: "54000", message: expect.stringMatching(/index row size .* for index "inbox_users_pkey"/) } });
    expect((error as Error).message).not.toMatch(/inbox_|index|SQLSTATE|54000|btree/);
    expect(() => server.engine.toUser("acme", randomCjk(1000))).toThrow(/at most 256 characters/);
    expect(await server.engine.metrics()).not.toMatch(/^truss_store_errors_total\{store="inbox"\} [1-9]/m);
    // The store still serves everyone else.
    await expect(server.engine.toUser("acme", "alice").emit("expense:approved", { expenseId: "e-2" })).resolves.toBeDefined();
  });

  test("a device asking for a document whose type holds U+0000 is answered INVALID_PAYLOAD", async () => {
    socket = await connectAs(server.url, { companyId: "acme", userId: "alice", deviceId: "alice-phone" });
    expect(await request(socket, "document:get", { type: "re\u0000port", id: "r-1" })).toMatchObject({ ok: false, error: { code: "INVALID_PAYLOAD" } });
    // The same request without it is a plain miss.
    expect(await request(socket, "document:get", { type: "report", id: "r-1" })).toMatchObject({ ok: false, error: { code: "NOT_FOUND" } });
  });
});
