import type { Socket } from "socket.io-client";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { notification } from "../src/notifications.js";
import { generateVapidKeys } from "../src/web-push.js";
import { BACKENDS, call, login, openSocket, request, startErpOn, type LoggedIn, type RunningErp } from "./helpers.js";
import { startPushService, type LocalPushService, type TestSubscription } from "./push-service.js";

/** How long a message waits for a device here; a minute in the demo. */
const AFTER_MS = 800;
const POLL_MS = 50;

/**
 * A message none of a user's devices took within the delay reaches them
 * another way: a Web Push notification to each browser they registered
 * (checked by a push service on 127.0.0.1 that verifies the VAPID signature
 * and decrypts the payload as a browser would), or else an e-mail, recorded
 * in `notifications_sent` and listed on the dashboard.
 */
describe.each(BACKENDS)("messages no device took are pushed or e-mailed, on %s", (backend) => {
  let erp: RunningErp;
  let push: LocalPushService;
  const vapid = generateVapidKeys("mailto:ops@northwind.test");
  const sockets: Socket[] = [];

  beforeEach(async () => {
    push = await startPushService();
    erp = await startErpOn(backend, { undelivered: { afterMs: AFTER_MS, pollIntervalMs: POLL_MS, vapid, pushAgent: push.agent, pushOrigins: [push.origin] } });
  });
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.disconnect();
    await erp?.close();
    await push?.close();
  });

  const as = (email: string) => login(erp.url, email);
  const register = async (user: LoggedIn, subscription: TestSubscription, deviceId = `${user.user.id}-browser`) => {
    const { endpoint, keys } = subscription;
    expect((await call(erp.url, user.token, "POST", "/api/push-subscriptions", { endpoint, keys, deviceId })).status).toBe(201);
  };
  const sentTo = async (viewer: LoggedIn, userId: string) =>
    (await call<any[]>(erp.url, viewer.token, "GET", "/api/notifications-sent")).body.filter((row) => row.userId === userId);

  test("Chloe, offline, with a push subscription: one push after the delay, signed with the server's VAPID key and encrypted to her browser", async () => {
    const [alice, chloe] = await Promise.all([as("alice@northwind.test"), as("chloe@northwind.test")]);
    const browser = push.subscribe();
    await register(chloe, browser);
    const { body: key } = await call(erp.url, chloe.token, "GET", "/api/push/public-key");
    expect(key).toEqual({ publicKey: vapid.publicKey });

    const decidedAt = Date.now();
    expect((await call(erp.url, alice.token, "POST", "/api/expenses/e-drone/reject", { reason: "Use the spare batteries in the van" })).status).toBe(200);
    await expect.poll(() => push.received.length, { timeout: 5000, interval: 20 }).toBe(1);
    expect(Date.now() - decidedAt).toBeGreaterThanOrEqual(AFTER_MS);

    const [received] = push.received;
    expect(received).toMatchObject({ subscription: browser.endpoint, vapidKey: vapid.publicKey, claims: { sub: "mailto:ops@northwind.test" }, headers: { ttl: "86400" } });
    expect(received!.payload).toMatchObject({ title: "Expense rejected", tag: expect.stringMatching(/^\d+-\d+$/), url: "/" });
    expect(received!.payload.body).toContain("Use the spare batteries in the van");
    expect(push.refused).toEqual([]);
    // Only the sentence is pushed: expense:rejected itself, sent with it, opts out.
    await new Promise((resolve) => setTimeout(resolve, 6 * POLL_MS));
    expect(push.received).toHaveLength(1);
    expect(await sentTo(chloe, "u-chloe")).toEqual([
      expect.objectContaining({ userName: "Chloe Park", channel: "push", event: "notification:new", summary: "Expense rejected", messageId: received!.payload.tag }),
    ]);
  });

  test("Ben's laptop takes the approval and acknowledges it before the delay: no push and no e-mail, while offline Chloe's rejection is e-mailed", async () => {
    const [alice, ben, chloe] = await Promise.all([as("alice@northwind.test"), as("ben@northwind.test"), as("chloe@northwind.test")]);
    await register(ben, push.subscribe());
    const laptop = await openSocket(erp.url, ben.token, "ben-laptop");
    sockets.push(laptop.socket);

    expect((await call(erp.url, alice.token, "POST", "/api/expenses/e-pump/approve", {})).status).toBe(200);
    expect((await call(erp.url, alice.token, "POST", "/api/expenses/e-drone/reject", {})).status).toBe(200);
    const taken = await laptop.log.waitFor("inbox:message", (message) => message.event === "notification:new");
    expect(await request(laptop.socket, "inbox:ack", { ids: [taken.id] })).toEqual({ ok: true });

    // Chloe's rejection, due at the same time, was e-mailed: the hook has run past Ben's approval.
    await expect.poll(() => sentTo(alice, "u-chloe"), { timeout: 5000 }).toEqual([expect.objectContaining({ channel: "email", summary: "Expense rejected" })]);
    expect(await sentTo(alice, "u-ben")).toEqual([]);
    expect(push.received).toEqual([]);
  });

  test("Hana's tab is connected but never acknowledges (a tab in the background): the push still comes", async () => {
    const [gus, hana] = await Promise.all([as("gus@globex.test"), as("hana@globex.test")]);
    await register(hana, push.subscribe());
    const tab = await openSocket(erp.url, hana.token, "hana-tab");
    sockets.push(tab.socket);

    expect((await call(erp.url, gus.token, "POST", "/api/expenses/e-rebar/approve", {})).status).toBe(200);
    await tab.log.waitFor("inbox:message", (message) => message.event === "notification:new");
    await expect.poll(() => push.received.map((received) => received.payload.title), { timeout: 5000 }).toEqual(["Expense approved"]);
  });

  test("Chloe without a push subscription: an e-mail is recorded, which the managers' dashboard lists and other members do not see", async () => {
    const [alice, ben, chloe] = await Promise.all([as("alice@northwind.test"), as("ben@northwind.test"), as("chloe@northwind.test")]);
    expect((await call(erp.url, alice.token, "POST", "/api/expenses/e-drone/reject", { reason: "Duplicate" })).status).toBe(200);

    await expect.poll(() => sentTo(alice, "u-chloe"), { timeout: 5000 }).toHaveLength(1);
    const rows = await sentTo(alice, "u-chloe");
    expect(rows[0]).toMatchObject({ userName: "Chloe Park", channel: "email", event: "notification:new", summary: "Expense rejected", sentAt: expect.any(Number) });
    expect(await sentTo(chloe, "u-chloe")).toEqual(rows);
    expect(await sentTo(ben, "u-chloe")).toEqual([]);
    expect(push.received).toEqual([]);
  });

  test("a push service answering 410 Gone: the subscription is deleted and the message e-mailed instead", async () => {
    const [alice, chloe] = await Promise.all([as("alice@northwind.test"), as("chloe@northwind.test")]);
    const expired = push.subscribe();
    expired.status = 410;
    await register(chloe, expired);
    expect(await erp.data.pushSubscriptions.list("northwind", "u-chloe")).toHaveLength(1);

    expect((await call(erp.url, alice.token, "POST", "/api/expenses/e-drone/reject", {})).status).toBe(200);
    await expect.poll(() => sentTo(chloe, "u-chloe"), { timeout: 5000 }).toEqual([expect.objectContaining({ channel: "email", summary: "Expense rejected" })]);
    expect(push.received).toHaveLength(1);
    expect(await erp.data.pushSubscriptions.list("northwind", "u-chloe")).toEqual([]);
  });

  test("the handler called twice for one message, one after the other and at once (at least once across nodes): one row, one push", async () => {
    const chloe = await as("chloe@northwind.test");
    await register(chloe, push.subscribe());
    const missed = (id: string) => ({
      companyId: "northwind",
      userId: "u-chloe",
      message: { id, event: "notification:new", data: notification("task", "Task assigned", "Pour the slab on level 3."), ts: Date.now() },
      devicesOnline: 0,
      attempt: 1,
      signal: new AbortController().signal,
    });
    await erp.undelivered.handler(missed("1700000000000-0"));
    await erp.undelivered.handler(missed("1700000000000-0"));
    expect(push.received).toHaveLength(1);
    await Promise.all([erp.undelivered.handler(missed("1700000000001-0")), erp.undelivered.handler(missed("1700000000001-0"))]);
    const rows = await sentTo(chloe, "u-chloe");
    expect(rows.map((row) => row.messageId).sort()).toEqual(["1700000000000-0", "1700000000001-0"]);
  });

  test("a browser's subscription: validated, moved to whoever logs in there next, removed at logout", async () => {
    const [ben, chloe] = await Promise.all([as("ben@northwind.test"), as("chloe@northwind.test")]);
    const browser = push.subscribe();
    const invalid = await call(erp.url, chloe.token, "POST", "/api/push-subscriptions", { endpoint: "http://127.0.0.1/x", keys: { p256dh: "abc", auth: "def" }, deviceId: "d" });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.code).toBe("INVALID_PAYLOAD");
    expect((await call(erp.url, null, "POST", "/api/push-subscriptions", {})).status).toBe(401);

    await register(chloe, browser);
    await register(ben, browser);
    expect(await erp.data.pushSubscriptions.list("northwind", "u-chloe")).toEqual([]);
    expect((await call(erp.url, chloe.token, "DELETE", "/api/push-subscriptions", { endpoint: browser.endpoint })).status).toBe(404);
    expect((await call(erp.url, ben.token, "DELETE", "/api/push-subscriptions", { endpoint: browser.endpoint })).status).toBe(204);
    expect(await erp.data.pushSubscriptions.list("northwind", "u-ben")).toEqual([]);
  });

  test("a subscription is taken only on a browser push service's host (or an origin the ERP is given): anything else is refused with 400, since the server would post to it", async () => {
    const chloe = await as("chloe@northwind.test");
    const { keys } = push.subscribe();
    const subscribe = (endpoint: string) => call<any>(erp.url, chloe.token, "POST", "/api/push-subscriptions", { endpoint, keys, deviceId: "chloe-browser" });
    const elsewhere = await startPushService();
    try {
      for (const endpoint of [
        "https://169.254.169.254/latest/meta-data/iam",
        "https://erp-db.internal/push/1",
        "https://fcm.googleapis.com.attacker.test/fcm/send/1",
        "https://push.apple.com.attacker.test/1",
        "https://fcm.googleapis.com:8443/fcm/send/1",
        "https://me:secret@fcm.googleapis.com/fcm/send/1",
        elsewhere.subscribe().endpoint,
      ]) {
        const refused = await subscribe(endpoint);
        expect(refused.status, endpoint).toBe(400);
        expect(refused.body.error).toEqual({ code: "PUSH_SERVICE_NOT_ALLOWED", message: expect.stringContaining("is not on a browser push service this server sends to") });
      }
      expect(await erp.data.pushSubscriptions.list("northwind", "u-chloe")).toEqual([]);
      for (const endpoint of [
        "https://fcm.googleapis.com/fcm/send/c1",
        "https://updates.push.services.mozilla.com/wpush/v2/c2",
        "https://web.push.apple.com/c3",
        "https://wns2-by3p.notify.windows.com/w/?token=c4",
      ]) {
        expect((await subscribe(endpoint)).status, endpoint).toBe(201);
        expect((await call(erp.url, chloe.token, "DELETE", "/api/push-subscriptions", { endpoint })).status).toBe(204);
      }
      expect(elsewhere.received).toEqual([]);
    } finally {
      await elsewhere.close();
    }
  });

  test("a stored subscription whose endpoint is not on an allowed push service is never posted to: it is deleted and the message e-mailed", async () => {
    const alice = await as("alice@northwind.test");
    const elsewhere = await startPushService();
    try {
      const stale = elsewhere.subscribe();
      // Saved around the route, as a row from before the check would be.
      await erp.data.pushSubscriptions.save("northwind", "u-chloe", { endpoint: stale.endpoint, p256dh: stale.keys.p256dh, auth: stale.keys.auth, deviceId: "chloe-old-browser" });

      expect((await call(erp.url, alice.token, "POST", "/api/expenses/e-drone/reject", {})).status).toBe(200);
      await expect.poll(() => sentTo(alice, "u-chloe"), { timeout: 5000 }).toEqual([expect.objectContaining({ channel: "email", summary: "Expense rejected" })]);
      expect(elsewhere.received).toEqual([]);
      expect(elsewhere.refused).toEqual([]);
      expect(await erp.data.pushSubscriptions.list("northwind", "u-chloe")).toEqual([]);
    } finally {
      await elsewhere.close();
    }
  });
});
