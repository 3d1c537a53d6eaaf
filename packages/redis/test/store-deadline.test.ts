import { TrussError } from "@truss/core";
import {
  connectAs,
  createClient,
  recordUnhandled,
  request,
  requireRedisOrSkip,
  servesAgain,
  startRedisServer,
  startTestServer,
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
 * (`limits.storeTimeoutMs`) answers each of them `STORE_UNAVAILABLE` in time:
 * the server API, a client's request and a new device's handshake, and the
 * engine serves again once Redis answers.
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
    server = await startTestServer({ ...redisStores(client, { prefix: "deadline" }), limits: { storeTimeoutMs: STORE_TIMEOUT_MS } });
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
      expect(failure).toMatchObject({ code: "STORE_UNAVAILABLE", message: expect.stringContaining(`no answer within ${STORE_TIMEOUT_MS} ms`) });
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

    // The paused commands complete now; their answers come after the engine gave up and are dropped, quietly.
    expect(await servesAgain(server, ann, note)).toEqual([]);
    phone.close();
    expect(unhandled.take()).toEqual([]);
  }, 20_000);
});
