import { StrictMode, type ReactNode } from "react";
import { cleanup, render, type RenderResult } from "@testing-library/react";
import type { AuthorizePolicy, RealtimeEngineOptions } from "@truss/core";
import { connect, type ConnectOptions, type TrussClient } from "@truss/client";
import { signToken, startTestServer, waitFor, type TestClaims, type TestServer } from "@truss/test-utils";
import { TrussProvider } from "@truss/react";

/** The site manager on her phone. */
export const alice = { userId: "alice", companyId: "acme", deviceId: "alice-phone" } satisfies TestClaims;
/** The office accountant. */
export const bob = { userId: "bob", companyId: "acme", deviceId: "bob-laptop" } satisfies TestClaims;

/** A real engine on a loopback port, with what its policy was asked. */
export interface Server extends TestServer {
  /** Every `topic:subscribe` the policy was asked about, in order: one per subscription on the wire. */
  topicRequests: string[];
  /** Topics the policy refuses. */
  closedTopics: Set<string>;
}

const servers: Server[] = [];
const clients: TrussClient<any>[] = [];

/** Starts a server whose policy allows every topic and document but `closedTopics`, and counts topic subscriptions. */
export async function startServer(options: Partial<RealtimeEngineOptions> = {}): Promise<Server> {
  const topicRequests: string[] = [];
  const closedTopics = new Set<string>();
  const authorize: AuthorizePolicy = (_principal, request) => {
    if (request.action !== "topic:subscribe") return true;
    topicRequests.push(request.topic);
    return !closedTopics.has(request.topic);
  };
  const server = Object.assign(await startTestServer({ authorize, topics: { patterns: ["project:{projectId}"] }, ...options }), { topicRequests, closedTopics });
  servers.push(server);
  return server;
}

/** `connect()`'s options for `claims`, with a signed token and fast reconnection. */
export function clientOptions(claims: TestClaims, options: Partial<ConnectOptions> = {}): ConnectOptions {
  return {
    token: signToken({ userId: claims.userId, companyId: claims.companyId }),
    deviceId: claims.deviceId ?? `${claims.userId}-device`,
    reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
    socketOptions: { transports: ["websocket"] },
    ...options,
  };
}

/** A client of the server at `url` as `claims`, closed by {@link closeAll}. */
export function openClient(url: string, claims: TestClaims, options: Partial<ConnectOptions> = {}): TrussClient<any> {
  const client = connect(url, clientOptions(claims, options));
  clients.push(client);
  return client;
}

/** Renders `ui` under a provider of `client`, in StrictMode unless told otherwise; `rerender` keeps the provider. */
export function renderWith(client: TrussClient<any>, ui: ReactNode, { strict = true } = {}): RenderResult {
  const wrap = (children: ReactNode) => {
    const tree = <TrussProvider client={client}>{children}</TrussProvider>;
    return strict ? <StrictMode>{tree}</StrictMode> : tree;
  };
  const result = render(wrap(ui));
  return { ...result, rerender: (next: ReactNode) => result.rerender(wrap(next)) };
}

/** The topic rooms the server holds for the company, by topic: what is subscribed on the server. */
export function topicRooms(server: Server, companyId = "acme"): string[] {
  const prefix = `topic:${companyId.length}:${companyId}:`;
  return [...server.engine.io!.of("/").adapter.rooms.keys()].filter((room) => room.startsWith(prefix)).map((room) => room.slice(prefix.length));
}

/** The document rooms the server holds for the company: what is watched on the server. */
export function documentRooms(server: Server): string[] {
  return [...server.engine.io!.of("/").adapter.rooms.keys()].filter((room) => room.startsWith("doc"));
}

/** Resolves once the client is connected. */
export function connected(client: TrussClient<any>): Promise<unknown> {
  return waitFor(() => client.status === "connected", { message: `connected (is ${client.status})` });
}

/** For `afterEach`: unmounts what was rendered, closes the clients, then the servers. */
export async function closeAll(): Promise<void> {
  cleanup();
  for (const client of clients.splice(0)) client.close();
  for (const server of servers.splice(0)) await server.close();
}
