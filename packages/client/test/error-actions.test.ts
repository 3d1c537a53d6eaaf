import { afterEach, expect, test } from "vitest";
import { TrussError, type Authenticator } from "@truss/core";
import { CONNECTION_ACTIONS, isRetryable, type ErrorPayload } from "@truss/protocol";
import { signToken, sleep, testAuth, waitFor, type TestServer } from "@truss/test-utils";
import { CLIENT_ERROR_CODES, ERROR_ACTIONS, ERROR_CODES, errorAction, type ErrorCode, type TrussClient, type TrussClientError } from "@truss/client";
import { closeAll, openClient, startProxy, startServer } from "./helpers.js";
import { numbers, whileCut } from "./stream-helpers.js";

afterEach(closeAll);

/** Whether the table says a request refused with `code` may pass when sent again. */
const sendsAgain = (code: ErrorCode) => isRetryable(ERROR_ACTIONS[code]);

/** The part of a server-side Socket.IO socket a test needs to answer a request itself. */
interface ServerSocket {
  data: { principal: { userId: string } };
  use(middleware: (packet: unknown[], next: (error?: Error) => void) => void): void;
}

/**
 * Lets the test answer a request before the engine sees it, as another
 * server, or this one in trouble, could answer with a code this engine never
 * gives that request. `answer` returns the refusal, or `null` to let the
 * engine handle the request.
 */
function answerFirst(server: TestServer, answer: (userId: string, event: string, payload: unknown) => ErrorPayload | null): void {
  // Prepended, so the test's middleware runs before the engine's, which answers every event itself.
  server.engine.io!.of("/").prependListener("connection", (socket: ServerSocket) => {
    socket.use((packet, next) => {
      const [event, payload] = packet;
      const ack = packet.at(-1);
      const refusal = typeof ack === "function" ? answer(socket.data.principal.userId, String(event), payload) : null;
      if (refusal) (ack as (reply: unknown) => void)({ ok: false, error: refusal });
      else next();
    });
  });
}

function refusal(code: ErrorCode): ErrorPayload {
  return { code, message: `Refused with ${code} by the test.` };
}

/** A client of its own user for each code, so each can be refused in its own way. */
function clientPerCode(url: string, options: { getToken?: boolean } = {}) {
  return ERROR_CODES.map((code, index) => {
    const user = { userId: `user-${index}`, companyId: "acme", deviceId: `device-${index}` };
    const client = openClient(url, user, options.getToken ? { getToken: () => signToken(user) } : {});
    const errors: string[] = [];
    client.onError((error) => errors.push(error.code));
    return { code, user, client, errors };
  });
}

test("every code a client error can carry has an action: the server's from the protocol's table, the client's own beside it", () => {
  const actions = ["retry", "renew-token", "resync", "reject", "stop"];
  for (const code of ERROR_CODES) expect(errorAction(code), code).toBe(ERROR_ACTIONS[code]);
  for (const code of CLIENT_ERROR_CODES) expect(actions, code).toContain(errorAction(code));
  expect(errorAction("DISCONNECTED")).toBe("retry");
  expect(errorAction("CLIENT_CLOSED")).toBe("stop");
  expect(errorAction("STORAGE_FAILED")).toBe("reject");
});

test("a handshake refused with any code is tried again, with a new token, or never, as the table says", async () => {
  const refuseOnce = new Map<string, ErrorCode>();
  const verify = testAuth();
  const auth: Authenticator = {
    authenticate: async (request) => {
      const principal = await verify.authenticate(request);
      const code = refuseOnce.get(principal.userId);
      refuseOnce.delete(principal.userId);
      if (code) throw new TrussError(code, `Refused with ${code} by the test.`);
      return principal;
    },
  };
  const server = await startServer({ auth });
  ERROR_CODES.forEach((code, index) => refuseOnce.set(`user-${index}`, code));
  const clients = clientPerCode(server.url, { getToken: true });
  const expected = (code: ErrorCode) => (CONNECTION_ACTIONS[ERROR_ACTIONS[code]] === "stop" ? "closed" : "connected");
  await waitFor(() => clients.every(({ code, client }) => client.status === expected(code)), {
    timeoutMs: 10_000,
    message: "each client connected or closed as its code says",
  });
  for (const { code, errors } of clients) expect(errors, code).toEqual([code]);
});

test("a queued write refused with any code is sent again exactly when the table says it may pass later", async () => {
  const server = await startServer();
  const sends = new Map<string, number>();
  server.engine.handle("job:run", (data) => {
    const { code } = data as { code: ErrorCode };
    const sent = (sends.get(code) ?? 0) + 1;
    sends.set(code, sent);
    // Refuses the first send of each write; the same mutation id sent again passes.
    if (sent === 1) throw new TrussError(code, `Refused with ${code} by the test.`);
    return { code };
  });
  const client = openClient(server.url, { userId: "alice", companyId: "acme" }, { outbox: { events: ["job:run"] } });
  for (const code of ERROR_CODES) {
    const outcome = await client.emit("job:run", { code }).then(
      () => "committed",
      (error: TrussClientError) => error.code,
    );
    expect(outcome, code).toBe(sendsAgain(code) ? "committed" : code);
    expect(sends.get(code), code).toBe(sendsAgain(code) ? 2 : 1);
  }
  expect(client.outbox.size).toBe(0);
});

test("a subscription refused when it is asked for again after a reconnection is kept and asked for again exactly when the table says", async () => {
  const asked: string[] = [];
  const server = await startServer({
    authorize: (_principal, request) => {
      if (request.action === "topic:subscribe") asked.push(request.topic);
      return true;
    },
    topics: { patterns: ["job:{code}"] },
    limits: { eventsPerSecond: 1000, userEventsPerSecond: 1000 },
  });
  const proxy = await startProxy(server.port);
  const refuseOnce = new Map<string, ErrorCode>();
  answerFirst(server, (_userId, event, payload) => {
    if (event !== "topic:subscribe") return null;
    const topic = (payload as { topic: string }).topic;
    const code = refuseOnce.get(topic);
    refuseOnce.delete(topic);
    return code ? refusal(code) : null;
  });
  const client = openClient(proxy.url, { userId: "alice", companyId: "acme" });
  const drops = new Map<string, string>();
  client.onDropped((drop) => {
    if (drop.kind === "topic") drops.set(drop.topic, drop.error.code);
  });
  const topicOf = (code: ErrorCode) => `job:${code.toLowerCase()}`;
  await Promise.all(ERROR_CODES.map((code) => client.subscribe(topicOf(code))));

  for (const code of ERROR_CODES) refuseOnce.set(topicOf(code), code);
  await whileCut(proxy, async () => {
    await waitFor(() => client.status === "reconnecting", { message: "the cut" });
  });
  const askedFor = (code: ErrorCode) => asked.filter((topic) => topic === topicOf(code)).length;
  await waitFor(() => ERROR_CODES.every((code) => (sendsAgain(code) ? askedFor(code) === 2 : drops.has(topicOf(code)))), {
    timeoutMs: 10_000,
    message: "each subscription asked for again, or dropped",
  });
  for (const code of ERROR_CODES) {
    expect(drops.get(topicOf(code)), code).toBe(sendsAgain(code) ? undefined : code);
    expect(client.subscriptions.has(topicOf(code)), code).toBe(sendsAgain(code));
  }
  expect(asked.length).toBe(ERROR_CODES.length + ERROR_CODES.filter(sendsAgain).length);
});

test("a catch-up read refused with any code is read again exactly when the table says", async () => {
  const server = await startServer();
  const proxy = await startProxy(server.port);
  const codeOf = new Map<string, ErrorCode>();
  const reads = new Map<string, number>();
  let armed = false;
  answerFirst(server, (userId, event) => {
    if (event !== "stream:read" || !armed) return null;
    const read = (reads.get(userId) ?? 0) + 1;
    reads.set(userId, read);
    return read === 1 ? refusal(codeOf.get(userId)!) : null;
  });
  const clients = clientPerCode(proxy.url).map((entry) => ({ ...entry, received: numbers(entry.client as TrussClient, "stock:updated") }));
  for (const { code, user } of clients) codeOf.set(user.userId, code);
  await waitFor(() => clients.every(({ client }) => client.status === "connected"), { message: "every client connected" });
  await server.engine.toCompany("acme").emit("stock:updated", { n: 1 });
  await waitFor(() => clients.every(({ received }) => received.length === 1), { message: "the first broadcast everywhere" });

  armed = true;
  await whileCut(proxy, async () => {
    await waitFor(() => clients.every(({ client }) => client.status === "reconnecting"), { message: "the cut" });
    for (const n of [2, 3]) await server.engine.toCompany("acme").emit("stock:updated", { n });
  });
  const retried = clients.filter(({ code }) => sendsAgain(code));
  const refused = clients.filter(({ code }) => !sendsAgain(code));
  await waitFor(() => retried.every(({ received }) => received.length === 3), { timeoutMs: 10_000, message: "the retried reads caught up" });
  // FORBIDDEN stays quiet: the topic's drop notice tells the app.
  await waitFor(() => refused.every(({ code, errors }) => code === "FORBIDDEN" || errors.includes(code)), { message: "each refusal reported" });
  // A refused read sent again would have gone out within the first retry's delay (at most 250 ms).
  await sleep(400);
  for (const { code, user, received } of retried) {
    expect(received, code).toEqual([1, 2, 3]);
    expect(reads.get(user.userId), code).toBeGreaterThanOrEqual(2);
  }
  for (const { code, user, received, errors } of refused) {
    expect(reads.get(user.userId), code).toBe(1);
    expect(received, code).toEqual([1]);
    expect(errors, code).toEqual(code === "FORBIDDEN" ? [] : [code]);
  }
});
