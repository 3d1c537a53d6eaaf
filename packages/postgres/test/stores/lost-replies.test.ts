import { randomUUID } from "node:crypto";
import type { TrussClient } from "@truss/client";
import type { DocumentUpdated } from "@truss/protocol";
import { sleep, startTcpProxy, startTestServer, waitFor, withTimeout, type TcpProxy, type TestServer } from "@truss/test-utils";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { postgresStores } from "../../src/stores/index.js";
import { freshSchema, SHARED_POSTGRES, type FreshSchema } from "../support/postgres.js";
import { device } from "../support/relay.js";

/** The stores' call timeout here: short, so a lost reply turns into STORE_UNAVAILABLE quickly. */
const TIMEOUT_MS = 1000;
/** How long a case waits to be sure nothing more arrives. */
const QUIET_MS = 300;
const TYPE = "site-report";
const ID = "riverside-0612";

/**
 * Writes whose reply from a real PostgreSQL is lost after the statement
 * committed: each store writes in one statement (a function that checks the
 * mutation id or idempotency key and writes in the same transaction), so the
 * write is there, the engine heard nothing and answered STORE_UNAVAILABLE,
 * and nobody was told. The resend with the same mutation id or key must
 * write nothing new, answer with what landed, and reach the devices online
 * then, once.
 *
 * The pool reaches PostgreSQL through a TCP proxy that drops what the server
 * sends from the moment a statement carrying the write's id goes through;
 * the checks read past it, on a pool of their own. The shared server, in a
 * schema of this file's own: nothing here restarts it.
 */
describe("PostgreSQL stores whose reply to a committed write was lost", () => {
  let db: FreshSchema;
  let proxy: TcpProxy;
  let pool: pg.Pool;
  let server: TestServer;
  /** The same stores on a pool that goes straight to PostgreSQL: what is stored, read past the proxy. */
  let direct: ReturnType<typeof postgresStores>;
  const clients: TrussClient[] = [];

  beforeAll(async () => {
    db = await freshSchema();
    proxy = await startTcpProxy(SHARED_POSTGRES.port);
    pool = new pg.Pool({ ...SHARED_POSTGRES, port: proxy.port, max: 4 });
    server = await startTestServer({ ...postgresStores(pool, { schema: db.schema, timeoutMs: TIMEOUT_MS }) });
    direct = postgresStores(db.pool, { schema: db.schema });
  });
  afterEach(() => {
    for (const client of clients.splice(0)) client.close();
  });
  afterAll(async () => {
    await server?.close();
    await pool?.end();
    await proxy?.close();
    await db?.drop();
  });

  /** A connected `@truss/client` device of `userId`, recording what its app is handed for `event` (if given); closed after the case. */
  async function deviceOf(companyId: string, userId: string, event?: string) {
    const made = await device(server.url, { companyId, userId, deviceId: `${userId}-phone` }, event);
    clients.push(made.client);
    return made;
  }

  /** Loses PostgreSQL's replies from the first statement that carries `marker`, runs `write`, and checks it failed unconfirmed. */
  async function loseReplyTo<T>(marker: string, write: () => Promise<T>): Promise<void> {
    const droppedBefore = proxy.bytesDropped;
    proxy.dropDownstreamAfter(marker);
    const failure = await write().then(
      () => null,
      (error: unknown) => error,
    );
    expect(failure).toMatchObject({ code: "STORE_UNAVAILABLE" });
    expect(proxy.bytesDropped).toBeGreaterThan(droppedBefore);
  }

  /** Brings the network back: connections that missed replies are out of step, so they go. */
  function restore(): void {
    proxy.cut();
    proxy.resumeDownstream();
  }

  /**
   * Calls `send` until it is not refused STORE_UNAVAILABLE, as an app's retry
   * does: the pool may first hand out a connection the cut ended and only then
   * notice, so the first attempt after the network is back can fail too.
   */
  async function retried<T>(send: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await send();
      } catch (error) {
        if ((error as { code?: string }).code !== "STORE_UNAVAILABLE" || attempt === 10) throw error;
        await sleep(100);
      }
    }
  }

  test("a document update resent by @truss/client's outbox commits nothing new, and the watching device hears of the version once", async () => {
    const companyId = `acme-${randomUUID()}`;
    await server.engine.documents.update(companyId, TYPE, ID, { baseVersion: 0, changes: { weather: "dry", crew: 4 } });
    const { client: watcher } = await deviceOf(companyId, "bob");
    const heard: DocumentUpdated[] = [];
    watcher.documents.onUpdated((update) => void heard.push(update));
    expect(await watcher.documents.watch(TYPE, ID)).toMatchObject({ version: 1 });
    const { client: writer } = await deviceOf(companyId, "ann");
    expect(await writer.documents.get(TYPE, ID)).toMatchObject({ version: 1 });

    // The update's read is answered; its compare-and-set, the first statement with the mutation id, is not.
    const mutationId = `m-${randomUUID()}`;
    proxy.dropDownstreamAfter(mutationId);
    const written = writer.documents.update(TYPE, ID, { crew: 7 }, { mutationId });
    written.catch(() => undefined);
    await waitFor(async () => (await versionsIn(companyId))[0] === 2, { timeoutMs: 5_000, message: "the commit in PostgreSQL" });
    await sleep(TIMEOUT_MS + QUIET_MS);
    expect(heard, "nothing is announced for a commit that was not confirmed").toEqual([]);

    restore();
    expect(await withTimeout(written, 15_000)).toMatchObject({ status: "applied", duplicate: true, document: { version: 2, data: { weather: "dry", crew: 7 } } });
    await waitFor(() => heard.length >= 1, { timeoutMs: 5_000, message: "version 2 on the watching device" });
    await sleep(QUIET_MS);
    expect(heard).toEqual([{ type: TYPE, id: ID, version: 2, data: { weather: "dry", crew: 7 }, updatedBy: "ann", changedFields: ["crew"] }]);
    expect(await versionsIn(companyId)).toEqual([2, 1]);
  });

  test("a toUser retried with its idempotency key stores one message, which the user's phone gets once", async () => {
    const companyId = `acme-${randomUUID()}`;
    const { heard: received } = await deviceOf(companyId, "ann", "expense:approved");
    const key = `expense-42:approved:${randomUUID()}`;
    const send = (attempt: number) => server.engine.toUser(companyId, "ann").emit("expense:approved", { expenseId: "e-42", attempt }, { idempotencyKey: key });

    await loseReplyTo(key, () => send(1));
    // The reply was lost, not the request: PostgreSQL stored the message.
    expect(await direct.inbox.read({ companyId, userId: "ann" }, null, 100)).toMatchObject([{ event: "expense:approved", data: { attempt: 1 } }]);
    await sleep(QUIET_MS);
    expect(received, "nothing is pushed for a message that was not confirmed").toEqual([]);

    restore();
    const again = await retried(() => send(2));
    expect(again.data).toEqual({ expenseId: "e-42", attempt: 1 });
    await waitFor(() => received.length >= 1, { timeoutMs: 5_000, message: "the message on the phone" });
    await sleep(QUIET_MS);
    expect(received).toEqual([{ expenseId: "e-42", attempt: 1 }]);
    expect(await direct.inbox.read({ companyId, userId: "ann" }, null, 100)).toEqual([again]);
  });

  test("a company broadcast retried with its idempotency key is stored once, and the office browser gets it once", async () => {
    const companyId = `acme-${randomUUID()}`;
    const { heard: received } = await deviceOf(companyId, "bob", "project:updated");
    const key = `project-7:renamed:${randomUUID()}`;
    const publish = (name: string) => server.engine.toCompany(companyId).emit("project:updated", { id: "p-7", name }, { idempotencyKey: key });

    await loseReplyTo(key, () => publish("Tower B"));
    expect((await direct.streams.read({ companyId, stream: "company" }, 0, 100)).entries).toHaveLength(1);
    await sleep(QUIET_MS);
    expect(received, "nothing is sent for a broadcast that was not confirmed").toEqual([]);

    restore();
    const position = await retried(() => publish("Tower B (retry)"));
    expect(position).toMatchObject({ offset: 1 });
    await waitFor(() => received.length >= 1, { timeoutMs: 5_000, message: "the broadcast on the office browser" });
    await sleep(QUIET_MS);
    expect(received).toEqual([{ id: "p-7", name: "Tower B" }]);
    const stored = await direct.streams.read({ companyId, stream: "company" }, 0, 100);
    expect(stored.entries.map(({ offset, event, data }) => ({ offset, event, data }))).toEqual([{ offset: 1, event: "project:updated", data: { id: "p-7", name: "Tower B" } }]);
  });

  /** The document's versions in PostgreSQL, newest first, read past the proxy. */
  async function versionsIn(companyId: string): Promise<number[]> {
    return (await direct.documents.history({ companyId, type: TYPE, id: ID }, 10)).map((version) => version.version);
  }
});
