import { afterEach, expect, test } from "vitest";
import { createServer } from "node:http";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { Server } from "socket.io";
import { connectAs, request, testAuth, waitFor } from "@truss/test-utils";
import { createRealtimeEngine, type RealtimeEngine } from "@truss/core";

// The engine installs its event middleware as a one-slot array when it is the socket's only one.
// An application's own middleware, added before the engine sees the socket, must still run, and
// the engine's limits must still apply after it.

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

/** An engine bound to a Socket.IO server made here; `before` and `after` wire the application's own handlers around the bind. */
async function boundServer(
  { before, after }: { before?: (io: Server) => void; after?: (io: Server) => void },
  options: Parameters<typeof createRealtimeEngine>[0] = { auth: testAuth() },
): Promise<{ engine: RealtimeEngine; url: string }> {
  const http = createServer();
  const io = new Server(http);
  before?.(io);
  const engine = createRealtimeEngine({ logger: false, ...options });
  engine.bind(io);
  after?.(io);
  http.listen(0, "127.0.0.1");
  await once(http, "listening");
  close = async () => {
    await engine.close();
    io.close();
    http.closeAllConnections();
  };
  return { engine, url: `http://127.0.0.1:${(http.address() as AddressInfo).port}` };
}

/** A server whose application adds a middleware to every socket before the engine sees it; `seen` lists the events it passed on. */
async function serverWithAppMiddleware(options?: Parameters<typeof createRealtimeEngine>[0]): Promise<{ engine: RealtimeEngine; url: string; seen: string[] }> {
  const seen: string[] = [];
  const before = (io: Server) =>
    io.on("connection", (socket) =>
      socket.use((packet, next) => {
        seen.push(String(packet[0]));
        next();
      }),
    );
  return { ...(await boundServer({ before }, options)), seen };
}

test("an application middleware added before the engine's runs, then the engine answers the event", async () => {
  const { url, seen } = await serverWithAppMiddleware();
  const device = await connectAs(url, { userId: "alice", companyId: "acme", deviceId: "phone" });
  expect(await request(device, "presence:list", {})).toMatchObject({ ok: true });
  expect((await request(device, "inbox:ack", { ids: "all" })).error.code).toBe("INVALID_PAYLOAD");
  expect(seen).toEqual(["presence:list", "inbox:ack"]);
  device.close();
});

test("behind an application middleware the engine still refuses an oversized event by its size", async () => {
  const { url } = await serverWithAppMiddleware({ auth: testAuth(), limits: { maxPayloadBytes: 1024 } });
  const device = await connectAs(url, { userId: "alice", companyId: "acme", deviceId: "phone" });
  const refused = await request(device, "presence:list", { padding: "x".repeat(2000) });
  expect(refused.error.code).toBe("PAYLOAD_TOO_LARGE");
  expect(await request(device, "presence:list", {})).toMatchObject({ ok: true });
  device.close();
});

test("a socket whose socket.data the application replaced still leaves every part when it disconnects", async () => {
  // After the engine's own handler: the application swaps in a socket.data of its own.
  const after = (io: Server) =>
    io.on("connection", (socket) => {
      socket.data = { tenant: "acme" } as never;
    });
  const { engine, url } = await boundServer({ after });
  const device = await connectAs(url, { userId: "alice", companyId: "acme", deviceId: "phone" });
  expect((await engine.health()).connections).toBe(1);
  expect(await engine.isOnline("acme", "alice")).toBe(true);
  device.close();
  await waitFor(async () => (await engine.health()).connections === 0 && !(await engine.isOnline("acme", "alice")));
});
