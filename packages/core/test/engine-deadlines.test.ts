import { TrussError, type Logger } from "@truss/core";
import { connectAs, createClient, recordUnhandled, request, signToken, startTestServer, testAuth, type TestServer } from "@truss/test-utils";
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
