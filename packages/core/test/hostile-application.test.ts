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
import { jwtAuth, type ConflictResolver } from "@truss/core";
import { defineEvents } from "@truss/protocol";
import {
  askCoded as ask,
  callCoded as call,
  connectedOrRefused,
  createClient,
  eachMisbehaviour,
  misbehave,
  MISBEHAVIOURS,
  recordUnhandled,
  request,
  servesAgain,
  sleep,
  startTestServer,
  TEST_AUDIENCE,
  TEST_ISSUER,
  TEST_SECRET,
  type Misbehaviour,
  type TestServer,
  type UnhandledRecord,
} from "@truss/test-utils";

type Callback = "authenticate" | "claims" | "authorize" | "resolver" | "schema" | "handler" | "undelivered";
const fault: { callback: Callback | null; mode: Misbehaviour | null; hits: number } = { callback: null, mode: null, hits: 0 };
/** Whether `callback` is to misbehave now; each yes counts as a hit (a case whose callback was never called proves nothing). */
const misbehaving = (callback: Callback) => fault.callback === callback && ++fault.hits > 0;

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
let unhandled: UnhandledRecord;
const undeliveredCalls: unknown[] = [];
const open: ClientSocket[] = [];

beforeAll(async () => {
  unhandled = recordUnhandled();
  server = await startTestServer({
    auth: { authenticate: (request) => (misbehaving("authenticate") ? misbehave(fault.mode!, "authenticate") : jwt.authenticate(request)) },
    authorize: () => (misbehaving("authorize") ? misbehave(fault.mode!, "authorize") : true),
    resolver,
    events,
    topics: { patterns: ["project:{projectId}"] },
    // Short bounds, so a callback that hangs is answered within the case.
    limits: { authorizeTimeoutMs: 500, authenticateTimeoutMs: 500, handlerTimeoutMs: 500 },
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
  unhandled.stop();
});

function connect(claims: typeof alice, deviceId: string, problems: string[]): Promise<ClientSocket | null> {
  const socket = createClient(server.url, { ...claims, deviceId });
  open.push(socket);
  return connectedOrRefused(socket, claims.userId, problems);
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

/** Once the handler behaves again, it answers. */
async function pongs(socket: ClientSocket, problems: string[]): Promise<void> {
  const pong = await request(socket, "site:ping", {}, 3000);
  if (pong?.ok !== true || pong.result?.pong !== true) problems.push(`site:ping once the handler behaved again answered ${JSON.stringify(pong)}`);
}

const CALLBACKS: readonly Callback[] = ["authenticate", "claims", "authorize", "resolver", "schema", "handler", "undelivered"];

describe("an application callback misbehaving", () => {
  test.each(CALLBACKS)("%s, every way: coded answers, nothing unhandled, served again after", async (callback) => {
    const failures = await eachMisbehaviour([...MISBEHAVIOURS, "hangs"], unhandled, async (mode, problems) => {
      Object.assign(fault, { callback, mode, hits: 0 });
      await workload(problems);
      if (fault.hits === 0) problems.push("the callback was never called during the fault");
      fault.callback = fault.mode = null;
      problems.push(...(await servesAgain(server, alice, note, pongs)));
      for (const socket of open.splice(0)) socket.close();
    });
    expect(failures).toEqual([]);
  });
});
