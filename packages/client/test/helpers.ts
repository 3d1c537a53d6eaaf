import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { signToken, startTcpProxy, startTestServer, testAuth, waitFor, type TcpProxy, type TestClaims, type TestServer } from "@truss/test-utils";
import { connect, type ConnectOptions, type TrussClient } from "@truss/client";
import { createRealtimeEngine, type RealtimeEngine, type RealtimeEngineOptions } from "@truss/core";
import type { EventCatalog } from "@truss/protocol";

/** A site manager on her phone. */
export const alice = { userId: "alice", companyId: "acme", deviceId: "alice-phone" } satisfies TestClaims;
/** The office accountant. */
export const bob = { userId: "bob", companyId: "acme", deviceId: "bob-laptop" } satisfies TestClaims;

/** Reconnection fast enough for tests, still exponential and jittered. */
export const fastReconnect = { initialDelayMs: 20, maxDelayMs: 200 };

/** Opens clients and closes every one of them with {@link closeClients}. */
const opened = new Set<TrussClient<any>>();

/** Connects a client as `claims` with a signed token, unless the options bring their own credential. */
export function openClient<C extends EventCatalog = EventCatalog>(url: string, claims: TestClaims, options: Partial<ConnectOptions> = {}): TrussClient<C> {
  // Tokens are not bound to a device here, so the server takes the client's own deviceId.
  const credential = options.getToken || options.token ? {} : { token: signToken({ userId: claims.userId, companyId: claims.companyId }) };
  const client = connect<C>(url, {
    deviceId: claims.deviceId ?? `${claims.userId}-device`,
    reconnect: fastReconnect,
    socketOptions: { transports: ["websocket"] },
    ...credential,
    ...options,
  });
  opened.add(client);
  return client;
}

/** Closes every client opened by {@link openClient}. */
export function closeClients(): void {
  for (const client of opened) client.close();
  opened.clear();
}

/** What {@link closeAll} closes besides the clients, in the order they were opened. */
const cleanups: Array<() => Promise<void>> = [];

/** Has {@link closeAll} run `close` (after the clients, newest first). */
export function onCleanup(close: () => Promise<void>): void {
  cleanups.push(close);
}

/** A test server that {@link closeAll} closes. */
export async function startServer<C extends EventCatalog = EventCatalog>(options: Partial<RealtimeEngineOptions<C>> = {}): Promise<TestServer<C>> {
  const server = await startTestServer<C>(options);
  onCleanup(() => server.close());
  return server;
}

/** A TCP proxy in front of `port` that {@link closeAll} closes. */
export async function startProxy(port: number): Promise<TcpProxy> {
  const proxy = await startTcpProxy(port);
  onCleanup(() => proxy.close());
  return proxy;
}

/** A loopback port that was free a moment ago, for a server that must come back on the same port. */
export async function freePort(): Promise<number> {
  const probe = createServer().listen(0, "127.0.0.1");
  await once(probe, "listening");
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/**
 * An engine on a given loopback port, as a restarted server would be (with
 * empty in-memory stores). `close` may be called by the test and again by
 * {@link closeAll}.
 */
export async function startServerAt(port: number, options: Partial<RealtimeEngineOptions> = {}): Promise<{ engine: RealtimeEngine; close(): Promise<void> }> {
  const engine = createRealtimeEngine({ auth: testAuth(), logger: false, ...options });
  const http = createServer();
  engine.attach(http);
  http.listen(port, "127.0.0.1");
  await once(http, "listening");
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= (async () => {
      await engine.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    })());
  onCleanup(close);
  return { engine, close };
}

/** For `afterEach`: closes every client, then every proxy and server the test started, newest first. */
export async function closeAll(): Promise<void> {
  closeClients();
  for (const close of cleanups.splice(0).reverse()) await close();
}

/** Resolves once the client reports `status`. */
export function waitForStatus(client: TrussClient<any>, status: TrussClient["status"], timeoutMs = 5000): Promise<unknown> {
  return waitFor(() => client.status === status, { timeoutMs, message: `status ${status} (is ${client.status})` });
}

/**
 * Resolves once the client has been `reconnecting` and is `connected` again.
 * Call it before the cut: a reconnection can finish faster than a poll of
 * `status` would notice the `reconnecting` in between.
 */
export function reconnection(client: TrussClient<any>, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    let wentAway = false;
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`no reconnection within ${timeoutMs} ms (status ${client.status})`));
    }, timeoutMs);
    const stop = client.onStatus((status) => {
      if (status === "reconnecting") wentAway = true;
      if (status === "connected" && wentAway) {
        clearTimeout(timer);
        stop();
        resolve();
      }
    });
  });
}

/**
 * A minimal Standard Schema (what zod, valibot and arktype implement): the
 * value must be an object whose listed fields have the given `typeof`.
 */
export function objectSchema<T extends Record<string, unknown>>(fields: { [K in keyof T]: "string" | "number" | "boolean" }) {
  return {
    "~standard": {
      version: 1 as const,
      vendor: "truss-client-test",
      validate(value: unknown) {
        if (typeof value !== "object" || value === null) return { issues: [{ message: "expected an object" }] };
        for (const [key, kind] of Object.entries(fields)) {
          if (typeof (value as Record<string, unknown>)[key] !== kind) return { issues: [{ message: `expected a ${kind}`, path: [key] }] };
        }
        return { value: value as T };
      },
      types: undefined as unknown as { input: T; output: T },
    },
  };
}
