import "reflect-metadata";
import type { ErrorPayload } from "@truss/protocol";
import { RealtimeModule, RealtimeService } from "@truss/nestjs";
import { collect, connectAs, expectNoNewHandles, handleCounts, request, testAuth, waitFor } from "@truss/test-utils";
import { io as connectClient, type Socket } from "socket.io-client";
import { afterEach, expect, test } from "vitest";
import { appModule, ChatGateway, LegacyGateway, startNest, type RunningApp } from "./app.js";

const acmeAlice = { userId: "alice", companyId: "acme" };

let running: RunningApp | undefined;
afterEach(async () => {
  await running?.app.close();
  running = undefined;
});

async function connectGateway(url: string, options: { path?: string } = {}): Promise<Socket> {
  const socket = connectClient(url, { transports: ["websocket"], reconnection: false, forceNew: true, ...options });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  return socket;
}

test("a @WebSocketGateway on /chat works beside Truss on /, on one Socket.IO server", async () => {
  running = await startNest(appModule(RealtimeModule.forRoot({ auth: testAuth(), logger: false }), { gateway: true }));
  const { app, url } = running;
  const alice = await connectAs(url, acmeAlice);
  const chat = await connectGateway(`${url}/chat`);

  const answer = await chat.timeout(5000).emitWithAck("chat:ping", "hello");
  expect(answer).toEqual({ reply: "pong: hello", socketId: expect.any(String) });
  // Truss's protocol still answers on its own namespace.
  expect(await request(alice, "presence:list", {})).toMatchObject({ ok: true, users: [{ userId: "alice" }] });
  // The gateway's namespace belongs to the server Truss serves, not to a second one.
  expect(app.get(ChatGateway).namespace.server).toBe(app.get(RealtimeService).engine.io);
  alice.close();
  chat.close();
});

test("a gateway on a Socket.IO path of its own gets a server of its own, and Truss keeps the default path", async () => {
  running = await startNest(appModule(RealtimeModule.forRoot({ auth: testAuth(), logger: false }), { legacyGateway: true }));
  const { app, url } = running;
  const alice = await connectAs(url, acmeAlice);
  const legacy = await connectGateway(url, { path: "/legacy-socket" });

  expect(await legacy.timeout(5000).emitWithAck("legacy:ping")).toBe("legacy pong");
  expect(await app.get(RealtimeService).isOnline("acme", "alice")).toBe(true);
  expect(app.get(LegacyGateway).server).not.toBe(app.get(RealtimeService).engine.io);
  alice.close();
  legacy.close();
});

test("app.close() tells Truss clients why, disconnects them and the gateway's, and leaves no open handle", async () => {
  const before = handleCounts();
  const { app, url } = await startNest(appModule(RealtimeModule.forRoot({ auth: testAuth(), logger: false }), { gateway: true }));
  const alice = await connectAs(url, acmeAlice);
  const chat = await connectGateway(`${url}/chat`);
  const errors = collect<ErrorPayload>(alice, "error");
  const reasons = collect<string>(alice, "disconnect");
  const chatReasons = collect<string>(chat, "disconnect");
  expect((await fetch(`${url}/health/websocket`)).status).toBe(200);

  await app.close();

  await waitFor(() => reasons.length === 1 && chatReasons.length === 1, { message: "both disconnects" });
  expect(errors.map((error) => error.code)).toEqual(["SERVER_SHUTTING_DOWN"]);
  expect(reasons).toEqual(["io server disconnect"]);
  await expectNoNewHandles(before);
});

test("app.close() without a gateway (Truss attached at bootstrap) also leaves no open handle", async () => {
  const before = handleCounts();
  const { app, url } = await startNest(appModule(RealtimeModule.forRoot({ auth: testAuth(), logger: false })), { trussAdapter: false });
  const alice = await connectAs(url, acmeAlice);
  const errors = collect<ErrorPayload>(alice, "error");
  const reasons = collect<string>(alice, "disconnect");

  await app.close();

  await waitFor(() => reasons.length === 1, { message: "the disconnect" });
  expect(errors.map((error) => error.code)).toEqual(["SERVER_SHUTTING_DOWN"]);
  expect(reasons).toEqual(["io server disconnect"]);
  await expectNoNewHandles(before);
});
