import { jwtAuth, memoryDocumentStore, memoryInboxStore, TrussError, type DocumentStore, type InboxStore, type Logger } from "@truss/core";
import type { InboxMessage } from "@truss/protocol";
import { collect, connectAs, createClient, recordUnhandled, request, signToken, sleep, startTestServer, testAuth, TEST_SECRET, waitFor, type TestServer } from "@truss/test-utils";
import type { Socket as ClientSocket } from "socket.io-client";
import { afterEach, describe, expect, test } from "vitest";

/**
 * The application's code that never answers (an identity service or a lock
 * with no timeout): the engine answers the client with a code after its bound,
 * logs why, drops the late answer without an unhandled rejection, and keeps
 * serving. Real Socket.IO and socket.io-client.
 */

const BOUND_MS = 200;
/** What an answer may take past its bound before the test calls it late. */
const SLACK_MS = 400;

let server: TestServer<any>;
const sockets: ClientSocket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await server?.close();
});

/** A logger that keeps its warnings. */
function warnings(): { logger: Logger; seen: string[] } {
  const seen: string[] = [];
  return { seen, logger: { warn: (message: string) => void seen.push(message), error: () => undefined } };
}

/** Resolves with the connect_error's data, or `"connected"`. */
function handshake(socket: ClientSocket): Promise<unknown> {
  sockets.push(socket);
  return new Promise((resolve) => {
    socket.once("connect", () => resolve("connected"));
    socket.once("connect_error", (error: any) => resolve(error.data));
    socket.connect();
  });
}

const ann = { userId: "ann", companyId: "acme" };

describe("an authenticator that never answers", () => {
  test("refuses the handshake with INTERNAL_ERROR within limits.authenticateTimeoutMs, and admits once it answers again", async () => {
    const jwt = testAuth();
    let hang = true;
    const { logger, seen } = warnings();
    server = await startTestServer({
      auth: { authenticate: (authRequest) => (hang ? new Promise(() => {}) : jwt.authenticate(authRequest)) },
      limits: { authenticateTimeoutMs: BOUND_MS },
      logger,
    });
    const startedAt = performance.now();
    const refusal = await handshake(createClient(server.url, ann));
    expect(performance.now() - startedAt).toBeLessThan(BOUND_MS + SLACK_MS);
    expect(refusal).toEqual({ code: "INTERNAL_ERROR", message: `The server could not verify the token within ${BOUND_MS} ms; retry shortly.` });
    expect(seen).toContain("the authenticator did not answer in time; the handshake was refused");

    hang = false;
    expect(await handshake(createClient(server.url, ann))).toBe("connected");
  });

  test("the request's signal is aborted with the refusal, for the authenticator and for jwtAuth's claims function, so the identity call stops too", async () => {
    const stopped: unknown[] = [];
    const waitForAbort = (signal: AbortSignal | undefined) => new Promise<never>(() => signal!.addEventListener("abort", () => stopped.push(signal!.reason)));
    server = await startTestServer({ auth: { authenticate: (authRequest) => waitForAbort(authRequest.signal) }, limits: { authenticateTimeoutMs: BOUND_MS } });
    const refusal = (await handshake(createClient(server.url, ann))) as { code: string; message: string };
    await waitFor(() => stopped.length === 1, { message: "the authenticator's signal aborted" });
    expect(stopped[0]).toMatchObject({ code: "INTERNAL_ERROR", message: refusal.message });
    await server.close();

    server = await startTestServer({
      auth: jwtAuth({ secret: TEST_SECRET, algorithms: ["HS256"], claims: (_payload, authRequest) => waitForAbort(authRequest.signal) }),
      limits: { authenticateTimeoutMs: BOUND_MS },
    });
    expect(await handshake(createClient(server.url, ann))).toMatchObject({ code: "INTERNAL_ERROR" });
    await waitFor(() => stopped.length === 2, { message: "the claims function's signal aborted" });
  });

  test("answers auth:refresh with INTERNAL_ERROR and keeps the socket on its current token", async () => {
    const jwt = testAuth();
    let hang = false;
    server = await startTestServer({
      auth: { authenticate: (authRequest) => (hang ? new Promise(() => {}) : jwt.authenticate(authRequest)) },
      limits: { authenticateTimeoutMs: BOUND_MS },
    });
    const socket = await connectAs(server.url, ann);
    sockets.push(socket);
    hang = true;
    const refreshed = await request(socket, "auth:refresh", { token: signToken(ann, { expiresInSec: 600 }) });
    expect(refreshed).toMatchObject({ ok: false, error: { code: "INTERNAL_ERROR" } });
    expect(socket.connected).toBe(true);
    hang = false;
    expect(await request(socket, "auth:refresh", { token: signToken(ann, { expiresInSec: 600 }) })).toMatchObject({ ok: true });
  });
});

describe("an application event whose handling never answers", () => {
  test("a handler is answered HANDLER_ERROR within limits.handlerTimeoutMs; its late answer is dropped and the next event is served", async () => {
    const unhandled = recordUnhandled();
    try {
      const { logger, seen } = warnings();
      server = await startTestServer({ limits: { handlerTimeoutMs: BOUND_MS }, logger });
      const late: Array<(value: unknown) => void> = [];
      const failLate: Array<(error: unknown) => void> = [];
      server.engine.handle("report:build", (data: any) =>
        data.mode === "hang" ? new Promise((resolve, reject) => (data.fail ? failLate.push(reject) : late.push(resolve))) : { built: true },
      );
      const socket = await connectAs(server.url, ann);
      sockets.push(socket);

      const startedAt = performance.now();
      const answer = await request(socket, "report:build", { mode: "hang" });
      expect(performance.now() - startedAt).toBeLessThan(BOUND_MS + SLACK_MS);
      expect(answer).toEqual({ ok: false, error: { code: "HANDLER_ERROR", message: `"report:build" did not answer within ${BOUND_MS} ms; it may still finish on the server.` } });
      expect(seen).toContain(`the handler for "report:build" did not answer in time; answered HANDLER_ERROR`);

      expect(await request(socket, "report:build", { mode: "hang", fail: true })).toMatchObject({ ok: false, error: { code: "HANDLER_ERROR" } });
      // The handlers finish after the engine gave up: one answers, one fails; neither reaches the client or goes unhandled.
      const stray: unknown[] = [];
      socket.onAny((...args) => stray.push(args));
      late[0]!({ built: "late" });
      failLate[0]!(new TrussError("FORBIDDEN", "late"));
      expect(await request(socket, "report:build", { mode: "now" })).toEqual({ ok: true, result: { built: true } });
      expect(stray).toEqual([]);
      expect(unhandled.take()).toEqual([]);
    } finally {
      unhandled.stop();
    }
  });

  test("the handler's signal is aborted with the HANDLER_ERROR the client got, so the work it started can stop too", async () => {
    server = await startTestServer({ limits: { handlerTimeoutMs: BOUND_MS } });
    const stopped: unknown[] = [];
    server.engine.handle("report:build", (_data, { signal }) => new Promise(() => signal.addEventListener("abort", () => stopped.push(signal.reason))));
    const socket = await connectAs(server.url, ann);
    sockets.push(socket);
    const answer = await request(socket, "report:build", {});
    expect(answer).toMatchObject({ ok: false, error: { code: "HANDLER_ERROR" } });
    await waitFor(() => stopped.length === 1, { message: "the signal aborted" });
    expect(stopped[0]).toMatchObject({ code: "HANDLER_ERROR", message: answer.error.message });
  });

  test("a schema whose validation never settles is answered the same way", async () => {
    const hanging = { "~standard": { version: 1, vendor: "test", validate: () => new Promise(() => {}) } };
    server = await startTestServer({
      events: { client: { "report:build": hanging }, server: {} } as any,
      limits: { handlerTimeoutMs: BOUND_MS },
    });
    server.engine.handle("report:build", () => ({ built: true }));
    const socket = await connectAs(server.url, ann);
    sockets.push(socket);
    expect(await request(socket, "report:build", {})).toMatchObject({ ok: false, error: { code: "HANDLER_ERROR" } });
  });
});

describe("an engine that closes while the application's work runs", () => {
  test("a handler still running when the shutdown's grace ends has its signal aborted with the SERVER_SHUTTING_DOWN its client got", async () => {
    server = await startTestServer();
    const stopped: unknown[] = [];
    server.engine.handle("report:build", (_data, { signal }) => new Promise(() => signal.addEventListener("abort", () => stopped.push(signal.reason))));
    const socket = await connectAs(server.url, ann);
    sockets.push(socket);
    const answer = request(socket, "report:build", {});
    await sleep(50);
    const closing = server.close();
    expect(await answer).toMatchObject({ ok: false, error: { code: "SERVER_SHUTTING_DOWN" } });
    await waitFor(() => stopped.length === 1, { message: "the handler's signal aborted" });
    expect(stopped[0]).toMatchObject({ code: "SERVER_SHUTTING_DOWN" });
    await closing;
  });

  test("an authenticator of a handshake in flight has its signal aborted when the engine closes, not at its own bound", async () => {
    const stopped: unknown[] = [];
    let called = 0;
    server = await startTestServer({
      auth: {
        authenticate: (authRequest) => {
          called += 1;
          return new Promise(() => authRequest.signal!.addEventListener("abort", () => stopped.push(authRequest.signal!.reason)));
        },
      },
      limits: { authenticateTimeoutMs: 60_000 },
    });
    const socket = createClient(server.url, ann);
    sockets.push(socket);
    socket.connect();
    await waitFor(() => called > 0, { message: "the authenticator called" });
    const startedAt = Date.now();
    await server.close();
    await waitFor(() => stopped.length === 1, { message: "the authenticator's signal aborted" });
    expect(stopped[0]).toMatchObject({ code: "SERVER_SHUTTING_DOWN" });
    expect(Date.now() - startedAt).toBeLessThan(10_000);
  });

  test("handlers running at close, half of them holding their signal, are all answered SERVER_SHUTTING_DOWN and raise no leak warning", async () => {
    const warned: string[] = [];
    const onWarning = (warning: Error) => void warned.push(warning.name);
    process.on("warning", onWarning);
    try {
      server = await startTestServer({ limits: { eventsPerSecond: 1000, userEventsPerSecond: 1000 } });
      let read = 0;
      server.engine.handle("report:build", (_data, context) => (++read % 2 === 0 ? new Promise(() => context.signal) : new Promise(() => {})));
      const socket = await connectAs(server.url, ann);
      sockets.push(socket);
      const answers = Array.from({ length: 24 }, () => request(socket, "report:build", {}));
      await waitFor(() => read === 24, { message: "every handler running" });
      await server.close();
      for (const answer of await Promise.all(answers)) expect(answer).toMatchObject({ ok: false, error: { code: "SERVER_SHUTTING_DOWN" } });
      await sleep(50);
      expect(warned).not.toContain("MaxListenersExceededWarning");
    } finally {
      process.off("warning", onWarning);
    }
  });
});

describe("a store that answers after limits.storeTimeoutMs", () => {
  test("the caller is told STORE_UNAVAILABLE in time, and the commit and the message the store made late are still announced", async () => {
    const unhandled = recordUnhandled();
    try {
      let slow = false;
      const later = <T>(answer: Promise<T>): Promise<T> => (slow ? sleep(BOUND_MS * 2).then(() => answer) : answer);
      const documents = memoryDocumentStore();
      const inbox = memoryInboxStore();
      // Wrapped, so not the built-in stores: their calls are timed.
      const slowDocuments: DocumentStore = { ...documents, compareAndSet: (...args) => later(documents.compareAndSet(...args)) };
      const slowInbox: InboxStore = { ...inbox, append: (...args) => later(inbox.append(...args)) };
      server = await startTestServer({ documents: slowDocuments, inbox: slowInbox, limits: { storeTimeoutMs: BOUND_MS } });
      const writer = await connectAs(server.url, { ...ann, deviceId: "phone" });
      const office = await connectAs(server.url, { userId: "bob", companyId: "acme", deviceId: "office" });
      sockets.push(writer, office);
      const report = { type: "report", id: "r-1" };
      expect(await request(writer, "document:update", { ...report, baseVersion: 0, changes: { crew: 3 } })).toMatchObject({ ok: true });
      const commits = collect<{ version: number }>(office, "document:updated");
      const messages = collect<InboxMessage>(writer, "inbox:message");

      slow = true;
      const startedAt = performance.now();
      expect(await request(writer, "document:update", { ...report, baseVersion: 1, changes: { crew: 4 } })).toMatchObject({ ok: false, error: { code: "STORE_UNAVAILABLE" } });
      await expect(server.engine.toUser("acme", "ann").emit("expense:approved", { id: "e-9" })).rejects.toMatchObject({ code: "STORE_UNAVAILABLE" });
      expect(performance.now() - startedAt).toBeLessThan(2 * BOUND_MS + SLACK_MS);
      slow = false;

      await waitFor(() => commits.some((commit) => commit.version === 2), { timeoutMs: 2000, message: "version 2 announced to the office" });
      await waitFor(() => messages.some((message) => (message.data as { id?: string }).id === "e-9"), { timeoutMs: 2000, message: "the message pushed to the phone" });
      expect((await server.engine.documents.get("acme", report.type, report.id))?.data).toEqual({ crew: 4 });
      expect(unhandled.take()).toEqual([]);
    } finally {
      unhandled.stop();
    }
  });
});
