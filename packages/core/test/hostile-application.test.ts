/**
 * Every callback the application hands the engine, misbehaving every way one
 * can: the client still gets a coded answer (or a coded refusal), nothing
 * goes unhandled, and once the callback behaves again the engine serves as
 * before. The callbacks: the authenticator, the JWT claims mapper, the
 * `authorize` policy, the document conflict resolver, an event's schema, an
 * event handler's answer, and the `undelivered` handler.
 *
 * Real Socket.IO on a real HTTP server, socket.io-client on the other side.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import type { Socket as ClientSocket } from "socket.io-client";
import type { StandardSchemaV1 } from "@standard-schema/spec";
import { jwtAuth, TrussError, type ConflictResolver } from "@truss/core";
import { defineEvents, ERROR_CODES, type InboxMessage } from "@truss/protocol";
import { collect, createClient, request, sleep, startTestServer, TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET, waitFor, type TestServer } from "@truss/test-utils";

/** How a callback misbehaves. */
type Mode = "throws" | "throws-null" | "rejects" | "null" | "empty" | "booby-trapped" | "throwing-thenable" | "promise-of-garbage";
const MODES: readonly Mode[] = ["throws", "throws-null", "rejects", "null", "empty", "booby-trapped", "throwing-thenable", "promise-of-garbage"];

/** What a callback misbehaving in `mode` returns (or throws). */
function misbehave(mode: Mode, where: string): any {
  switch (mode) {
    case "throws":
      throw new TypeError(`hostile application: ${where} threw`);
    case "throws-null":
      throw null;
    case "rejects":
      return Promise.reject(undefined);
    case "null":
      return null;
    case "empty":
      return {};
    case "booby-trapped":
      return new Proxy(
        {},
        {
          get(_, property) {
            if (property === "then") return undefined;
            throw new Error(`hostile application: the answer of ${where} was read (${String(property)})`);
          },
        },
      );
    case "throwing-thenable":
      // Awaiting it reads `then`, which throws.
      return Object.defineProperty({}, "then", {
        get() {
          throw new Error(`hostile application: the answer of ${where} has a throwing then`);
        },
      });
    case "promise-of-garbage":
      return Promise.resolve({ userId: 42, companyId: ["acme"], roles: "admin", outcome: "merged", data: 7, issues: "many", value: Symbol("v") });
  }
}

type Callback = "authenticate" | "claims" | "authorize" | "resolver" | "schema" | "handler" | "undelivered";
const fault: { callback: Callback | null; mode: Mode | null; hits: number } = { callback: null, mode: null, hits: 0 };
/** Whether `callback` is to misbehave now; each yes counts as a hit (a case whose callback was never called proves nothing). */
const misbehaving = (callback: Callback) => fault.callback === callback && ++fault.hits > 0;

const KNOWN_CODES = new Set<string>(ERROR_CODES);
const alice = { userId: "alice", companyId: "acme", roles: ["member"] };
const bob = { userId: "bob", companyId: "acme", roles: ["member"] };
const note = { type: "note", id: "n-1" };

/** A schema for `site:ping` that takes any object; misbehaves when told to. */
const pingSchema: StandardSchemaV1<unknown, unknown> = {
  "~standard": {
    version: 1,
    vendor: "hostile-tests",
    validate: (value) => (misbehaving("schema") ? misbehave(fault.mode!, "the schema's validate") : typeof value === "object" && value !== null ? { value } : { issues: [{ message: "an object" }] }),
  },
};
const events = defineEvents({ client: { "site:ping": pingSchema }, server: {} });

const jwt = jwtAuth({
  secret: TEST_SECRET,
  algorithms: ["HS256"],
  issuer: TEST_ISSUER,
  audience: TEST_AUDIENCE,
  claims: (payload) =>
    misbehaving("claims")
      ? misbehave(fault.mode!, "the claims mapper")
      : { userId: payload.sub as string, companyId: payload.companyId as string, roles: payload.roles as string[], deviceId: payload.deviceId as string },
});

/** Merges stale writes field by field as the default does, unless told to misbehave. */
const resolver: ConflictResolver = {
  name: "hostile",
  resolve: (input) => (misbehaving("resolver") ? misbehave(fault.mode!, "the resolver") : { outcome: "merged", data: { ...input.current, ...input.changes } }),
};

let server: TestServer<any>;
const unhandled: string[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(`unhandled rejection: ${reason instanceof Error ? reason.stack : String(reason)}`);
const onUncaught = (error: Error) => void unhandled.push(`uncaught exception: ${error.stack}`);
const undeliveredCalls: unknown[] = [];
const open: ClientSocket[] = [];

beforeAll(async () => {
  process.on("unhandledRejection", onUnhandled);
  process.on("uncaughtException", onUncaught);
  server = await startTestServer({
    auth: { authenticate: (request) => (misbehaving("authenticate") ? misbehave(fault.mode!, "authenticate") : jwt.authenticate(request)) },
    authorize: () => (misbehaving("authorize") ? misbehave(fault.mode!, "authorize") : true),
    resolver,
    events,
    topics: { patterns: ["project:{projectId}"] },
    limits: { authorizeTimeoutMs: 500 },
    undelivered: {
      afterMs: 20,
      pollIntervalMs: 20,
      timeoutMs: 200,
      backoffMs: 20,
      handler: (call) => (misbehaving("undelivered") ? misbehave(fault.mode!, "the undelivered handler") : void undeliveredCalls.push(call)),
    },
  });
  server.engine.handle("site:ping", () => (misbehaving("handler") ? misbehave(fault.mode!, "the handler") : { pong: true }));
});

afterEach(() => {
  for (const socket of open.splice(0)) socket.close();
  fault.callback = fault.mode = null;
});

afterAll(async () => {
  await server?.close();
  process.off("unhandledRejection", onUnhandled);
  process.off("uncaughtException", onUncaught);
});

async function connect(claims: typeof alice, deviceId: string, problems: string[]): Promise<ClientSocket | null> {
  const socket = createClient(server.url, { ...claims, deviceId });
  open.push(socket);
  const outcome = await new Promise<{ ok: true } | { ok: false; error: any }>((resolve) => {
    socket.once("connect", () => resolve({ ok: true }));
    socket.once("connect_error", (error: any) => resolve({ ok: false, error }));
    socket.connect();
  });
  if (outcome.ok) return socket;
  const code = outcome.error?.data?.code;
  if (!KNOWN_CODES.has(code)) problems.push(`${claims.userId} was refused without a known code: ${JSON.stringify(outcome.error?.data ?? outcome.error?.message)}`);
  return null;
}

async function ask(socket: ClientSocket, event: string, payload: unknown, problems: string[]): Promise<any> {
  let answer: any;
  try {
    answer = await request(socket, event, payload, 3000);
  } catch {
    problems.push(`${event}: no answer within 3 s`);
    return null;
  }
  if (answer?.ok !== true && !KNOWN_CODES.has(answer?.error?.code)) problems.push(`${event}: answered ${JSON.stringify(answer)}`);
  return answer;
}

/** Calls the server API; it must resolve, or reject with a TrussError of a known code. */
async function call(what: string, run: () => Promise<unknown>, problems: string[]): Promise<void> {
  try {
    await run();
  } catch (error) {
    if (!(error instanceof TrussError) || !KNOWN_CODES.has(error.code)) problems.push(`${what}: rejected with ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
  }
}

/** Reaches every callback: the handshake (authenticator, claims), the policy on each kind of request, a stale write (resolver), an application event (schema, handler), an unacknowledged message (undelivered). */
async function workload(problems: string[]): Promise<void> {
  const phone = await connect(alice, "phone", problems);
  const laptop = await connect(bob, "laptop", problems);
  // A message for a user with no device online: the undelivered handler is called 20 ms later.
  await call("toUser", () => server.engine.toUser("acme", "carol").emit("expense:approved", { id: "e-1" }), problems);
  // A stale write through the server API: the resolver decides, once the document has a version 2.
  await call("documents.update", () => server.engine.documents.update("acme", note.type, note.id, { baseVersion: 1, changes: { crew: 3 } }), problems);
  for (const socket of [phone, laptop]) {
    if (!socket) continue;
    await ask(socket, "topic:subscribe", { topic: "project:p1" }, problems);
    await ask(socket, "presence:list", { follow: true }, problems);
    const got = await ask(socket, "document:get", note, problems);
    const version = typeof got?.document?.version === "number" ? got.document.version : 0;
    await ask(socket, "document:update", { ...note, baseVersion: version, changes: { status: socket === phone ? "open" : "closed" } }, problems);
    // Stale on purpose, once there is a version 2: the resolver decides.
    await ask(socket, "document:update", { ...note, baseVersion: Math.max(1, version - 1), changes: { crew: socket === phone ? 4 : 5 } }, problems);
    await ask(socket, "document:watch", note, problems);
    await ask(socket, "presence:join", { scope: note, state: { editing: true } }, problems);
    await ask(socket, "site:ping", { at: Date.now() }, problems);
    await ask(socket, "stream:read", { stream: "company", epoch: "unknown", after: 0 }, problems);
  }
  // The undelivered poll's turn (every 20 ms; a call times out after 200 ms and is retried 20 ms later).
  await sleep(300);
  phone?.disconnect();
  laptop?.disconnect();
  await sleep(40);
}

/** With every callback behaving again: a new device connects, gets a message live, commits an update, gets its handler's answer. */
async function healthy(): Promise<string[]> {
  const problems: string[] = [];
  const tablet = await connect(alice, `tablet-${Math.random().toString(36).slice(2)}`, problems);
  if (!tablet) return [...problems, "a device could not connect once the callback behaved again"];
  const messages = collect<InboxMessage>(tablet, "inbox:message");
  const sent = await server.engine.toUser("acme", "alice").emit("expense:approved", { id: "health" });
  try {
    await waitFor(() => messages.some((message) => message.id === sent.id), { timeoutMs: 3000, message: "the message live" });
  } catch {
    problems.push("a message sent once the callback behaved again did not arrive live");
  }
  const current = await request(tablet, "document:get", note, 3000);
  const update = await request(tablet, "document:update", { ...note, baseVersion: current?.document?.version ?? 0, changes: { health: Date.now() } }, 3000);
  if (update?.ok !== true) problems.push(`a document update once the callback behaved again answered ${JSON.stringify(update)}`);
  const pong = await request(tablet, "site:ping", {}, 3000);
  if (pong?.ok !== true || pong.result?.pong !== true) problems.push(`site:ping once the handler behaved again answered ${JSON.stringify(pong)}`);
  tablet.close();
  return problems;
}

const CALLBACKS: readonly Callback[] = ["authenticate", "claims", "authorize", "resolver", "schema", "handler", "undelivered"];

describe("an application callback misbehaving", () => {
  test.each(CALLBACKS)("%s, every way: coded answers, nothing unhandled, served again after", async (callback) => {
    const failures: string[] = [];
    for (const mode of MODES) {
      unhandled.length = 0;
      const problems: string[] = [];
      Object.assign(fault, { callback, mode, hits: 0 });
      await workload(problems);
      if (fault.hits === 0) problems.push("the callback was never called during the fault");
      fault.callback = fault.mode = null;
      problems.push(...(await healthy()));
      await sleep(30);
      problems.push(...unhandled.splice(0));
      for (const socket of open.splice(0)) socket.close();
      if (problems.length > 0) failures.push(`${callback} ${mode}:\n  ${problems.join("\n  ")}`);
    }
    expect(failures).toEqual([]);
  });
});
