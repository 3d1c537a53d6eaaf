import type { InboxMessage } from "@truss/protocol";
import { isTrussError } from "@truss/core";
import { collect, connectAs, startTcpProxy, startTestServer, waitFor, type TcpProxy, type TestServer } from "@truss/test-utils";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { migrate } from "../../src/migrate.js";
import { postgresStores, type PostgresStores } from "../../src/stores/index.js";
import { startPrivatePostgres, type PrivatePostgres } from "../support/postgres.js";

/** The stores' call timeout in this file: short, so the outage cases stay short. */
const TIMEOUT_MS = 1000;
/** What a call may take past its timeout before the test calls it late. */
const SLACK_MS = 500;
/** The bound for answering again once PostgreSQL is back. */
const RECOVERY_BUDGET_MS = 5000;
const SCHEMA = "truss_faults";

/** Every store call, each on its own fresh key, so one failing cannot hide another. */
function everyCall(stores: PostgresStores, tag: string): Array<[string, () => Promise<unknown>]> {
  const doc = { companyId: "acme", type: "project", id: `p-${tag}` };
  const user = { companyId: "acme", userId: `u-${tag}` };
  const stream = { companyId: "acme", stream: `topic:t-${tag}` };
  return [
    ["documents.get", () => stores.documents.get(doc)],
    ["documents.getVersion", () => stores.documents.getVersion(doc, 1)],
    ["documents.compareAndSet", () => stores.documents.compareAndSet(doc, 0, { n: 1 }, "ann", { id: `m-${tag}`, writer: "ann", madeAt: Date.now() })],
    ["documents.mutation", () => stores.documents.mutation(doc, { id: `m-${tag}`, writer: "ann", madeAt: Date.now() })],
    ["documents.history", () => stores.documents.history(doc, 10)],
    ["inbox.append", () => stores.inbox.append(user, "expense:approved", { n: 1 }, { idempotencyKey: `k-${tag}` })],
    ["inbox.read", () => stores.inbox.read(user, null, 10)],
    ["inbox.ack", () => stores.inbox.ack({ ...user, deviceId: "phone" }, "1-0")],
    ["inbox.cursor", () => stores.inbox.cursor({ ...user, deviceId: "phone" })],
    ["inbox.dropped", () => stores.inbox.dropped()],
    ["streams.append", () => stores.streams.append(stream, "project:updated", { n: 1 }, { idempotencyKey: `k-${tag}` })],
    ["streams.read", () => stores.streams.read(stream, 0, 10)],
    ["streams.trimmed", () => stores.streams.trimmed()],
  ];
}

/** Runs every call and returns, per call, how it settled and how long it took. */
async function settleAll(calls: Array<[string, () => Promise<unknown>]>) {
  return Promise.all(
    calls.map(async ([name, call]) => {
      const start = performance.now();
      const outcome = await call().then(
        () => ({ ok: true as const }),
        (error: unknown) => ({ ok: false as const, error }),
      );
      return { name, ms: performance.now() - start, ...outcome };
    }),
  );
}

/**
 * The stores on a private PostgreSQL that is stopped, or cut off behind a
 * proxy that holds connections unanswered, mid-run: every call rejects
 * within its timeout with a driver error (which the engine reports as
 * STORE_UNAVAILABLE, checked through a real engine), and everything works
 * again within 5 s of PostgreSQL coming back, on the same pool, without a
 * restart.
 */
describe("postgres stores while PostgreSQL is down", () => {
  let server: PrivatePostgres;
  let proxy: TcpProxy;
  let pool: pg.Pool;
  let stores: PostgresStores;
  let app: TestServer;

  beforeAll(async () => {
    server = await startPrivatePostgres();
    proxy = await startTcpProxy(server.port);
    // No connectionTimeoutMillis: the stores' own timeout must bound every call. And no
    // 'error' listener: the stores add one, or idle clients the server drops would end the process.
    pool = new pg.Pool({ ...server.connection, port: proxy.port, max: 10 });
    await migrate(pool, { schema: SCHEMA });
    stores = postgresStores(pool, { schema: SCHEMA, timeoutMs: TIMEOUT_MS });
    app = await startTestServer({ ...stores });
  }, 120_000);

  afterEach(async () => {
    // The next case, and the teardown, need PostgreSQL up and reachable, even after a failed case.
    proxy.release();
    await server.start().catch(() => undefined);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await pool?.end();
    await proxy?.close();
    await server?.destroy();
  }, 60_000);

  test("PostgreSQL stopped: every call rejects within the timeout, the engine answers STORE_UNAVAILABLE, and all works again within 5 s of a start", async () => {
    for (const result of await settleAll(everyCall(stores, "before"))) expect(result, result.name).toMatchObject({ ok: true });
    const phone = await connectAs(app.url, { companyId: "acme", userId: "ann", deviceId: "phone" });
    const delivered = collect<InboxMessage>(phone, "inbox:message");
    try {
      await app.engine.toUser("acme", "ann").emit("expense:approved", { n: 1 });
      await waitFor(() => delivered.length === 1, { message: "the first message reaches the phone" });

      await server.stop();
      const down = await settleAll(everyCall(stores, "down"));
      for (const result of down) {
        expect(result.ok, `${result.name} rejects`).toBe(false);
        expect(result.ms, `${result.name} rejects within the timeout`).toBeLessThan(TIMEOUT_MS + SLACK_MS);
        // A driver error, not a TypeError or RangeError, which the engine would take for a bug.
        const error = result.ok ? undefined : result.error;
        expect(error instanceof TypeError || error instanceof RangeError, `${result.name}: ${String(error)}`).toBe(false);
      }
      const codes = await Promise.all([
        app.engine.toUser("acme", "ann").emit("expense:approved", { n: 2 }).then(() => "resolved", (error: unknown) => (isTrussError(error) ? error.code : String(error))),
        app.engine.documents.get("acme", "project", "p-engine").then(() => "resolved", (error: unknown) => (isTrussError(error) ? error.code : String(error))),
        app.engine
          .toCompany("acme")
          .emit("project:updated", { n: 2 }, { idempotencyKey: "row-2" })
          .then(() => "resolved", (error: unknown) => (isTrussError(error) ? error.code : String(error))),
      ]);
      expect(codes).toEqual(["STORE_UNAVAILABLE", "STORE_UNAVAILABLE", "STORE_UNAVAILABLE"]);
      expect((await app.engine.health()).status).toBe("degraded");

      await server.start();
      const backAt = performance.now();
      await waitFor(
        async () => {
          const results = await settleAll(everyCall(stores, `after-${Math.round(performance.now())}`));
          return results.every((result) => result.ok);
        },
        { timeoutMs: RECOVERY_BUDGET_MS, intervalMs: 100, message: "every store call works again" },
      );
      expect(performance.now() - backAt).toBeLessThan(RECOVERY_BUDGET_MS);
      await app.engine.toUser("acme", "ann").emit("expense:approved", { n: 3 });
      await waitFor(() => delivered.length === 2, { message: "a message after the outage reaches the phone" });
      expect(delivered.map((message) => message.data)).toEqual([{ n: 1 }, { n: 3 }]);
      expect((await app.engine.health()).status).toBe("ok");
    } finally {
      phone.disconnect();
    }
  }, 60_000);

  test("PostgreSQL restarted under load: every item retried with its key lands exactly once, in contiguous offsets, and appends succeed again within 5 s", async () => {
    const stream = { companyId: "acme", stream: `topic:restart-${Date.now()}` };
    const user = { companyId: "acme", userId: `restart-${Date.now()}` };
    const ITEMS = 200;
    const WORKERS = 4;
    let next = 0;
    let failures = 0;
    let restartedAt = 0;
    let firstSuccessAfterRestart = 0;
    const succeeded = () => {
      if (restartedAt > 0 && firstSuccessAfterRestart === 0) firstSuccessAfterRestart = performance.now();
    };
    // Each item is retried with the same key until it is confirmed, as the outbox relay does.
    const worker = async () => {
      while (next < ITEMS) {
        const item = next++;
        for (;;) {
          try {
            await stores.streams.append(stream, "project:updated", { item }, { idempotencyKey: `item-${item}` });
            await stores.inbox.append(user, "expense:approved", { item }, { idempotencyKey: `item-${item}` });
            succeeded();
            break;
          } catch {
            failures += 1;
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        }
        // Paced, so the restart lands mid-run.
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    const restart = (async () => {
      while (next < ITEMS / 4) await new Promise((resolve) => setTimeout(resolve, 5));
      await server.stop();
      await server.start();
      restartedAt = performance.now();
    })();
    await Promise.all([...Array.from({ length: WORKERS }, worker), restart]);

    expect(failures, "the restart was felt").toBeGreaterThan(0);
    expect(firstSuccessAfterRestart - restartedAt).toBeLessThan(RECOVERY_BUDGET_MS);
    const read = await stores.streams.read(stream, 0, 1000);
    expect(read.top).toBe(ITEMS);
    expect(read.entries.map((entry) => entry.offset)).toEqual(Array.from({ length: ITEMS }, (_, index) => index + 1));
    expect(read.entries.map((entry) => (entry.data as { item: number }).item).sort((a, b) => a - b)).toEqual(Array.from({ length: ITEMS }, (_, index) => index));
    const messages = await stores.inbox.read(user, null, 1000);
    expect(messages.map((message) => (message.data as { item: number }).item).sort((a, b) => a - b)).toEqual(Array.from({ length: ITEMS }, (_, index) => index));
  }, 60_000);

  test("PostgreSQL unreachable (connections held unanswered): every call still rejects within the timeout, and none runs late", async () => {
    const doc = { companyId: "acme", type: "project", id: "p-held" };
    proxy.hold();
    proxy.cut();
    try {
      const held = await settleAll(everyCall(stores, "held"));
      for (const result of held) {
        expect(result.ok, `${result.name} rejects`).toBe(false);
        expect(result.ms, `${result.name} rejects within the timeout`).toBeLessThan(TIMEOUT_MS + SLACK_MS);
      }
      // A write that rejected on its deadline is not run once connections come through.
      const write = await stores.documents.compareAndSet(doc, 0, { late: true }, "ann").then(
        () => "resolved",
        () => "rejected",
      );
      expect(write).toBe("rejected");
    } finally {
      proxy.release();
    }
    await waitFor(async () => (await stores.documents.get({ ...doc, id: "p-probe" }).then(() => true, () => false)), {
      timeoutMs: RECOVERY_BUDGET_MS,
      intervalMs: 100,
      message: "the stores answer once connections pass again",
    });
    // Give any connection the proxy held time to reach the server: the rejected write must not land.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await stores.documents.get(doc)).toBeNull();
  }, 60_000);
});
