import { afterEach, expect, test } from "vitest";
import type { RealtimeEngineOptions } from "@truss/core";
import { sleep, waitFor, type TcpProxy, type TestServer } from "@truss/test-utils";
import type { ResyncReason } from "@truss/client";
import { alice, closeAll, freePort, openClient, startProxy, startServer, startServerAt, waitForStatus } from "./helpers.js";
import { numbers, range, recoveries, resyncs, waitForCount, whileCut } from "./stream-helpers.js";

afterEach(closeAll);

async function start(options: Partial<RealtimeEngineOptions>): Promise<{ server: TestServer; proxy: TcpProxy }> {
  const server = await startServer(options);
  const proxy = await startProxy(server.port);
  return { server, proxy };
}

/**
 * A client that handled broadcast 0, loses its connection while `missed`
 * broadcasts go out (and `whileAway` runs), and comes back. Returns what its
 * app was handed and told once broadcast `missed + 1`, sent after it is back,
 * arrived.
 */
async function missBroadcasts(options: Partial<RealtimeEngineOptions>, missed: number, whileAway: () => Promise<unknown> = async () => {}) {
  const { server, proxy } = await start(options);
  const send = (n: number) => server.engine.toCompany("acme").emit("stock:updated", { n });
  const client = openClient(proxy.url, alice);
  const received = numbers(client, "stock:updated");
  const resynced = resyncs(client);
  const recovering = recoveries(client);
  await waitForStatus(client, "connected");
  await send(0);
  await waitForCount(received, 1);

  await whileCut(proxy, async () => {
    await waitFor(() => client.status === "reconnecting", { message: "the client to notice the cut" });
    for (const n of range(1, missed)) await send(n);
    await whileAway();
  });
  await waitFor(() => resynced.length > 0 && !client.recovering, { message: "a resync" });
  await send(missed + 1);
  await waitForCount(received, 2);
  await sleep(150);
  return { received, resynced, recovering };
}

test.each<[string, ResyncReason, Partial<RealtimeEngineOptions>, number]>([
  ["dropped by the size cap", "HISTORY_TRIMMED", { recovery: { size: 10 } }, 50],
  ["longer than the server replays at once", "TOO_MANY_MISSED", { recovery: { maxReplay: 20 } }, 50],
])("a gap %s is a %s resync: none of it is delivered, and live delivery continues", async (_what, reason, options, missed) => {
  const { received, resynced, recovering } = await missBroadcasts(options, missed);
  expect(resynced).toEqual([{ stream: "company", topic: null, reason, message: expect.stringMatching(/refetch/i) }]);
  expect(received).toEqual([0, missed + 1]);
  expect(recovering).toEqual([true, false]);
});

test("a gap older than the history's TTL is a HISTORY_EXPIRED resync", async () => {
  const { received, resynced } = await missBroadcasts({ recovery: { ttlMs: 300 } }, 5, () => sleep(400));
  expect(resynced.map((resync) => resync.reason)).toEqual(["HISTORY_EXPIRED"]);
  expect(received).toEqual([0, 6]);
});

test("a stream left idle past recovery.idleMs after its entries expired is forgotten: an EPOCH_CHANGED resync", async () => {
  const { received, resynced } = await missBroadcasts({ recovery: { ttlMs: 200, idleMs: 200 } }, 5, () => sleep(700));
  expect(resynced.map((resync) => resync.reason)).toEqual(["EPOCH_CHANGED"]);
  expect(received).toEqual([0, 6]);
});

test("a topic's gap the server cannot replay names the topic in its resync", async () => {
  const { server, proxy } = await start({ authorize: () => true, recovery: { size: 5 } });
  const client = openClient(proxy.url, alice);
  const received = numbers(client, "task:moved");
  const resynced = resyncs(client);
  await client.subscribe("project:p-17");
  const send = (n: number) => server.engine.toTopic("acme", "project:p-17").emit("task:moved", { n });
  await send(0);
  await waitForCount(received, 1);
  await whileCut(proxy, async () => {
    await waitFor(() => client.status === "reconnecting", { message: "the client to notice the cut" });
    for (const n of range(1, 20)) await send(n);
  });
  await waitFor(() => resynced.length > 0, { message: "a resync" });
  await send(21);
  await waitForCount(received, 2);
  expect(resynced).toEqual([{ stream: "topic:project:p-17", topic: "project:p-17", reason: "HISTORY_TRIMMED", message: expect.any(String) }]);
  expect(received).toEqual([0, 21]);
});

test("a server restarted with an empty history is an EPOCH_CHANGED resync, and the new epoch is delivered live", async () => {
  const port = await freePort();

  const first = await startServerAt(port);
  const client = openClient(`http://127.0.0.1:${port}`, alice);
  const received = numbers(client, "stock:updated");
  const resynced = resyncs(client);
  await waitForStatus(client, "connected");
  for (const n of range(1, 3)) await first.engine.toCompany("acme").emit("stock:updated", { n });
  await waitForCount(received, 3);

  await first.close();
  await waitForStatus(client, "reconnecting");
  const second = await startServerAt(port);
  // Sent before the client is back: part of the gap its app refetches.
  await second.engine.toCompany("acme").emit("stock:updated", { n: 100 });
  await waitFor(() => resynced.length > 0, { message: "a resync" });
  for (const n of range(101, 103)) await second.engine.toCompany("acme").emit("stock:updated", { n });
  await waitForCount(received, 6);
  await sleep(150);

  expect(resynced).toEqual([{ stream: "company", topic: null, reason: "EPOCH_CHANGED", message: expect.any(String) }]);
  expect(received).toEqual([1, 2, 3, 101, 102, 103]);
});
