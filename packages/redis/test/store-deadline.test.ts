import { TrussError } from "@truss/core";
import type { InboxMessage } from "@truss/protocol";
import {
  collect,
  connectAs,
  createClient,
  recordUnhandled,
  request,
  requireRedisOrSkip,
  servesAgain,
  sleep,
  startRedisServer,
  startTestServer,
  waitFor,
  type RedisServer,
  type TestServer,
  type UnhandledRecord,
} from "@truss/test-utils";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { redisStores } from "../src/index.js";

/** The engine's bound on one store call in this file. */
const STORE_TIMEOUT_MS = 400;
/** What an answer may take past the bound before the test calls it late. */
const SLACK_MS = 600;
/** How long Redis stops answering. */
const PAUSE_MS = 3_000;

const ann = { userId: "ann", companyId: "acme", roles: ["member"] };
const note = { type: "note", id: "n-1" };

/**
 * The stores on an ioredis client left at its defaults: no `commandTimeout`
 * and the offline queue on, against the README's advice. A Redis that stops
 * answering (CLIENT PAUSE: the connections stay up, nothing comes back, as
 * behind a slow script or a network that drops packets) would then hold every
 * store call for as long as it lasts. The engine's own bound
 * (`limits.storeTimeoutMs`) answers the server API and a client's request
 * `STORE_UNAVAILABLE` in time, decides a new device's handshake in bounded
 * time, and serves again once Redis answers; a write that Redis runs after
 * the bound is still announced.
 */
describe.runIf(requireRedisOrSkip("the engine's store deadline against a real Redis"))("a Redis that stops answering, with ioredis at its defaults", () => {
  let redis: RedisServer;
  let client: Redis;
  let admin: Redis;
  let server: TestServer;
  let unhandled: UnhandledRecord;

  beforeAll(async () => {
    unhandled = recordUnhandled();
    redis = await startRedisServer();
    client = new Redis(redis.port, "127.0.0.1");
    admin = new Redis(redis.port, "127.0.0.1");
    server = await startTestServer({
      ...redisStores(client, { prefix: "deadline" }),
      limits: { storeTimeoutMs: STORE_TIMEOUT_MS },
      // No revocation poll while a case pauses Redis: its script would queue ahead of the case's own commands.
      revocationTiming: { pollIntervalMs: 60_000 },
    });
  });

  afterAll(async () => {
    await admin?.call("CLIENT", "UNPAUSE").catch(() => undefined);
    await server?.close();
    client?.disconnect();
    admin?.disconnect();
    await redis?.stop();
    unhandled?.stop();
  });

  test("the server API and a request are answered STORE_UNAVAILABLE within the bound, a handshake is decided in bounded time, and all is served again after", async () => {
    const phone = await connectAs(server.url, { ...ann, deviceId: "phone" });
    const created = await request(phone, "document:update", { ...note, baseVersion: 0, changes: { title: "site diary" } });
    expect(created).toMatchObject({ ok: true });

    await admin.call("CLIENT", "PAUSE", String(PAUSE_MS), "ALL");
    try {
      let startedAt = performance.now();
      const failure = await server.engine
        .toUser("acme", "ann")
        .emit("expense:approved", { during: "pause" })
        .then(() => null, (error: unknown) => error);
      expect(failure).toBeInstanceOf(TrussError);
      expect(failure).toMatchObject({ code: "STORE_UNAVAILABLE", cause: expect.objectContaining({ message: expect.stringContaining(`no answer within ${STORE_TIMEOUT_MS} ms`) }) });
      expect(performance.now() - startedAt).toBeLessThan(STORE_TIMEOUT_MS + SLACK_MS);

      startedAt = performance.now();
      const update = await request(phone, "document:update", { ...note, baseVersion: 1, changes: { status: "open" } }, PAUSE_MS);
      expect(update).toMatchObject({ ok: false, error: { code: "STORE_UNAVAILABLE" } });
      expect(performance.now() - startedAt).toBeLessThan(STORE_TIMEOUT_MS + SLACK_MS);

      // The handshake reads the user's revocations, their devices online and where the company's stream stands, one
      // after the other, each bounded: when the store cannot say, a node decides on what it knows itself (its own
      // revocations) and lets the device in, so a frozen Redis does not lock every phone out.
      startedAt = performance.now();
      const laptop = createClient(server.url, { ...ann, deviceId: "laptop" });
      const outcome = await new Promise<any>((resolve) => {
        laptop.once("connect", () => resolve({ connected: true }));
        laptop.once("connect_error", (error: any) => resolve(error.data));
        laptop.connect();
      });
      const took = performance.now() - startedAt;
      laptop.close();
      expect(outcome).toEqual({ connected: true });
      expect(took).toBeLessThan(3 * STORE_TIMEOUT_MS + SLACK_MS);
    } finally {
      await admin.call("CLIENT", "UNPAUSE");
    }

    // The paused commands complete now; their answers come after the engine gave up, quietly.
    expect(await servesAgain(server, ann, note)).toEqual([]);
    phone.close();
    expect(unhandled.take()).toEqual([]);
  }, 20_000);

  test("a write that lands after the bound is still delivered: the commit reaches the company, the message the user's phone", async () => {
    const report = { type: "note", id: "n-late" };
    const phone = await connectAs(server.url, { ...ann, deviceId: "phone-2" });
    const office = await connectAs(server.url, { userId: "bob", companyId: "acme", roles: ["member"], deviceId: "office" });
    try {
      expect(await request(phone, "document:update", { ...report, baseVersion: 0, changes: { title: "pour" } })).toMatchObject({ ok: true });
      const commits = collect<{ id: string; version: number }>(office, "document:updated");
      const inbox = collect<InboxMessage>(phone, "inbox:message");

      // Writes wait; reads go on: the update reads the latest version, then its compare-and-set waits past the bound.
      await admin.call("CLIENT", "PAUSE", String(PAUSE_MS), "WRITE");
      try {
        const update = await request(phone, "document:update", { ...report, baseVersion: 1, changes: { status: "poured" } }, PAUSE_MS);
        expect(update).toMatchObject({ ok: false, error: { code: "STORE_UNAVAILABLE" } });
        const sent = await server.engine
          .toUser("acme", "ann")
          .emit("expense:approved", { landed: "late" })
          .then(() => null, (error: unknown) => error);
        expect(sent).toMatchObject({ code: "STORE_UNAVAILABLE" });
        expect(commits.filter((commit) => commit.id === report.id)).toEqual([]);
      } finally {
        await admin.call("CLIENT", "UNPAUSE");
      }

      // Redis runs the waiting writes now: the engine announces what they stored, though it answered the callers already.
      await waitFor(() => commits.some((commit) => commit.id === report.id && commit.version === 2), { timeoutMs: 3000, message: "version 2 announced" });
      await waitFor(() => inbox.some((message) => (message.data as { landed?: string })?.landed === "late"), { timeoutMs: 3000, message: "the late message pushed" });
      expect(unhandled.take()).toEqual([]);
    } finally {
      phone.close();
      office.close();
    }
  }, 20_000);

  test("a device that connects while Redis is paused gets its queued messages once Redis answers, before any sent meanwhile", async () => {
    const cara = { userId: "cara", companyId: "acme", roles: ["member"], deviceId: "phone" };
    const queued: InboxMessage[] = [];
    for (let n = 1; n <= 3; n++) queued.push(await server.engine.toUser("acme", "cara").emit("expense:approved", { n }));
    const phone = createClient(server.url, cara);
    const received = collect<InboxMessage>(phone, "inbox:message");
    const errors = collect<{ code: string }>(phone, "error");
    try {
      await admin.call("CLIENT", "PAUSE", String(PAUSE_MS), "ALL");
      try {
        phone.connect();
        await waitFor(() => phone.connected, { timeoutMs: PAUSE_MS, message: "the phone let in during the pause" });
        // Not confirmed within the bound; Redis stores it once the pause ends, and the engine pushes it then.
        const late = await server.engine
          .toUser("acme", "cara")
          .emit("expense:approved", { n: 4 })
          .then(() => null, (error: unknown) => error);
        expect(late).toMatchObject({ code: "STORE_UNAVAILABLE" });
        expect(received).toEqual([]);
      } finally {
        await admin.call("CLIENT", "UNPAUSE");
      }
      await waitFor(() => received.length >= 4, { timeoutMs: 5000, message: "the queued messages, then the one stored late" });
      await sleep(200);
      expect(received.map((message) => message.data)).toEqual([1, 2, 3, 4].map((n) => ({ n })));
      expect(received.slice(0, 3)).toEqual(queued);
      expect(errors).toEqual([]);
      expect(phone.connected).toBe(true);
      expect(unhandled.take()).toEqual([]);
    } finally {
      phone.close();
    }
  }, 20_000);
});
