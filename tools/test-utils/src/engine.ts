import { once } from "node:events";
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createRealtimeEngine, jwtAuth, type RealtimeEngine, type RealtimeEngineOptions } from "@truss/core";
import type { EventCatalog, ScopedPresenceChange, ScopedPresenceChanges } from "@truss/protocol";
import { io as connectClient, type Socket as ClientSocket, type ManagerOptions, type SocketOptions } from "socket.io-client";
import { signToken, TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET, type TestClaims } from "./tokens.js";

/** An engine listening on a free loopback port. */
export interface TestServer<C extends EventCatalog = EventCatalog> {
  engine: RealtimeEngine<C>;
  http: HttpServer;
  url: string;
  port: number;
  /** Closes the engine, then the HTTP server. */
  close(): Promise<void>;
}

/** The authenticator the tests use: HS256 with the test secret, issuer and audience. */
export const testAuth = () => jwtAuth({ secret: TEST_SECRET, algorithms: ["HS256"], issuer: TEST_ISSUER, audience: TEST_AUDIENCE });

/** Starts an engine on `127.0.0.1:0` with the test authenticator and quiet logging. */
export async function startTestServer<C extends EventCatalog = EventCatalog>(
  options: Partial<RealtimeEngineOptions<C>> = {},
): Promise<TestServer<C>> {
  const engine = createRealtimeEngine<C>({ auth: testAuth(), logger: false, ...options });
  const http = createServer();
  engine.attach(http);
  http.listen(0, "127.0.0.1");
  await once(http, "listening");
  const { port } = http.address() as AddressInfo;
  return {
    engine,
    http,
    port,
    url: `http://127.0.0.1:${port}`,
    async close() {
      await engine.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

/** Options of a test client. */
export interface TestClientOptions extends Partial<ManagerOptions & SocketOptions> {
  /** Overrides the token (default: one signed for the claims). */
  token?: string;
  /** The device id to ask for. */
  deviceId?: string;
}

/**
 * Creates a socket.io-client for the claims without connecting it, so a test
 * can register listeners before the server's first packets (replays) arrive.
 * Connect it with {@link open}.
 */
export function createClient(url: string, claims: TestClaims, options: TestClientOptions = {}): ClientSocket {
  const { token = signToken(claims), deviceId = claims.deviceId, ...rest } = options;
  return connectClient(url, {
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    autoConnect: false,
    auth: { token, ...(deviceId ? { deviceId } : {}) },
    ...rest,
  });
}

/** Connects a client made by {@link createClient}; rejects with the `connect_error`. */
export async function open(socket: ClientSocket): Promise<ClientSocket> {
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("connect_error", (error) => {
      socket.close();
      reject(error);
    });
    socket.connect();
  });
  return socket;
}

/** Connects a socket.io-client and waits for `connect`; rejects with the `connect_error`. */
export function connectAs(url: string, claims: TestClaims, options: TestClientOptions = {}): Promise<ClientSocket> {
  return open(createClient(url, claims, options));
}

/** Tries to connect and resolves with the coded `connect_error` payload (rejects if it connects). */
export async function connectError(url: string, options: Partial<ManagerOptions & SocketOptions>): Promise<{ message: string; data?: { code: string; message: string } }> {
  const socket = connectClient(url, { transports: ["websocket"], reconnection: false, forceNew: true, ...options });
  try {
    return await new Promise((resolve, reject) => {
      socket.once("connect", () => reject(new Error("connected, but a refusal was expected")));
      socket.once("connect_error", (error) => resolve(error as never));
    });
  } finally {
    socket.close();
  }
}

/** Collects every payload of one event a socket receives. */
export function collect<T = unknown>(socket: ClientSocket, event: string): T[] {
  const received: T[] = [];
  socket.on(event, (payload: T) => received.push(payload));
  return received;
}

/**
 * Makes a socket follow its company's presence (`presence:list` with
 * `follow: true`, answered before this resolves) and collects every change it
 * hears from then on, in order, whether it came alone (`presence:update`) or
 * in a burst's batch (`presence:updates`).
 */
export async function followPresence(socket: ClientSocket): Promise<Array<{ userId: string; online: boolean }>> {
  const received: Array<{ userId: string; online: boolean }> = [];
  socket.on("presence:update", (update: { userId: string; online: boolean }) => received.push(update));
  socket.on("presence:updates", (batch: { updates: Array<{ userId: string; online: boolean }> }) => received.push(...batch.updates));
  const answer = (await socket.timeout(5_000).emitWithAck("presence:list", { follow: true })) as { ok: boolean };
  if (!answer.ok) throw new Error(`presence:list { follow: true } was refused: ${JSON.stringify(answer)}`);
  return received;
}

/**
 * Collects every scoped presence change a socket hears (`presence:changes`
 * batches, one entry per member change with its scope), less the socket's own
 * joins and updates, which a client ignores; its own `left` stays.
 */
export function collectScopedPresence(socket: ClientSocket): ScopedPresenceChange[] {
  const received: ScopedPresenceChange[] = [];
  socket.on("presence:changes", (batch: ScopedPresenceChanges) => {
    for (const change of batch.changes) if (change.change === "left" || change.member.memberId !== socket.id) received.push({ scope: batch.scope, ...change });
  });
  return received;
}

/** Emits with an ack and resolves with the ack's argument. */
export function request<T = any>(socket: ClientSocket, event: string, payload?: unknown, timeoutMs = 5000): Promise<T> {
  return socket.timeout(timeoutMs).emitWithAck(event, payload) as Promise<T>;
}

/** Polls `check` until it returns truthy, or fails after `timeoutMs`. */
export async function waitFor<T>(check: () => T | Promise<T>, { timeoutMs = 5000, intervalMs = 10, message = "condition" } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `promise`, or `undefined` once `ms` pass first; for closing things that may hang in a failed test. */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
