import { afterEach, expect, test, vi } from "vitest";
import { collect, connectAs, createClient, open, sleep, startTcpProxy, startTestServer, waitFor, type TcpProxy, type TestClaims, type TestServer } from "@truss/test-utils";
import type { ErrorPayload } from "@truss/protocol";
import type { Socket as ClientSocket } from "socket.io-client";

/**
 * A stalled reader never reads the `SLOW_CONSUMER` sent right before it is
 * cut, so the engine tells the device on its next connection, once.
 */

let server: TestServer | undefined;
let proxy: TcpProxy | undefined;
const sockets: ClientSocket[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const socket of sockets.splice(0)) socket.close();
  await proxy?.close();
  proxy = undefined;
  await server?.close();
  server = undefined;
});

const tablet = { userId: "site-lead", companyId: "acme", deviceId: "tablet" };

/** Connects a device directly and collects the `error` events it receives from its very first packet. */
async function connectDevice(claims: TestClaims): Promise<{ socket: ClientSocket; errors: ErrorPayload[] }> {
  const socket = createClient(server!.url, claims);
  sockets.push(socket);
  const errors = collect<ErrorPayload>(socket, "error");
  await open(socket);
  return { socket, errors };
}

/**
 * Stalls a device behind a proxy and broadcasts until the engine cuts it as a
 * slow consumer; then its network goes (`read: false`), or it reads again.
 */
async function cutAsSlowConsumer(claims: TestClaims, { read = false } = {}): Promise<void> {
  proxy = await startTcpProxy(server!.port);
  const stalled = await connectAs(proxy.url, claims);
  sockets.push(stalled);
  const goodbye = collect<ErrorPayload>(stalled, "error");
  const serverSide = [...server!.engine.io!.of("/").sockets.values()].find((socket) => socket.data.principal.deviceId === claims.deviceId)!;
  proxy.stallDownstream();
  const payload = "s".repeat(16 * 1024);
  for (let burst = 0; burst < 400 && serverSide.connected; burst++) {
    for (let i = 0; i < 50; i++) server!.engine.toCompany(claims.companyId).emit("stock:updated", { payload });
    await sleep(20);
  }
  expect(serverSide.connected, "the stalled reader was cut").toBe(false);
  expect(await server!.engine.metrics()).toMatch(/truss_slow_consumers_total 1/);
  if (!read) {
    // The stalled connection never gets to read its goodbye.
    proxy.cut();
    return;
  }
  proxy.resumeDownstream();
  await waitFor(() => goodbye.some((error) => error.code === "SLOW_CONSUMER"), { message: "the goodbye read after all" });
  // Its WebSocket answered the server's close: the server has seen it read everything.
  await waitFor(() => serverSide.conn.readyState === "closed", { message: "the cut connection closed by both ends" });
}

test("a device cut as a slow consumer is told SLOW_CONSUMER on its next connection, once, and only that device", async () => {
  server = await startTestServer({ limits: { maxBufferedBytes: 128 * 1024 } });
  const otherDevice = await connectDevice({ ...tablet, deviceId: "phone" });
  await cutAsSlowConsumer(tablet);

  const next = await connectDevice(tablet);
  await waitFor(() => next.errors.length === 1, { message: "the notice on the next connection" });
  expect(next.errors[0]).toEqual({ code: "SLOW_CONSUMER", message: expect.stringMatching(/^This device's previous connection was cut at \d{4}-.*stopped reading/) });
  expect(next.socket.connected).toBe(true);

  // Told once: a later connection of the device, the user's other devices and the same device id of another user hear nothing.
  const later = await connectDevice(tablet);
  const otherUser = await connectDevice({ ...tablet, userId: "crew-member" });
  const otherCompany = await connectDevice({ ...tablet, companyId: "globex" });
  // Each gets an answer to a request after its connection's first packets, so anything sent on connect came before it.
  for (const device of [later, otherUser, otherCompany, otherDevice]) {
    await new Promise((resolve) => device.socket.emit("presence:list", {}, resolve));
    expect(device.errors).toEqual([]);
  }
});

test("a device that read the goodbye after all is not told again", async () => {
  server = await startTestServer({ limits: { maxBufferedBytes: 128 * 1024 } });
  await cutAsSlowConsumer(tablet, { read: true });
  const next = await connectDevice(tablet);
  await new Promise((resolve) => next.socket.emit("presence:list", {}, resolve));
  expect(next.errors).toEqual([]);
});

test("a cut is forgotten after 10 minutes", async () => {
  server = await startTestServer({ limits: { maxBufferedBytes: 128 * 1024 } });
  await cutAsSlowConsumer(tablet);
  const now = Date.now();
  vi.spyOn(Date, "now").mockImplementation(() => now + 10 * 60_000 + 1_000);
  const next = await connectDevice(tablet);
  await new Promise((resolve) => next.socket.emit("presence:list", {}, resolve));
  expect(next.errors).toEqual([]);
});
