import { memoryPresenceStore, type PresenceStore } from "@truss/core";
import { connectAs, followPresence, sleep, startTestServer, waitFor, type TestServer } from "@truss/test-utils";
import type { Socket } from "socket.io-client";
import { afterEach, expect, test } from "vitest";

/**
 * Company presence over a store whose connects land after
 * `limits.storeTimeoutMs`: the user a late connect brings online is still
 * announced, and a disconnect is not overtaken by it. Real Socket.IO and
 * socket.io-client.
 */

const BOUND_MS = 100;
/** How long a slow connect takes to land: past the bound. */
const LANDS_AFTER_MS = 300;

let server: TestServer;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await server?.close();
});

/** The in-memory store, wrapped (so its calls are timed) with `connect`s that land late while `slow` is set. */
function slowConnectStore(): { store: PresenceStore; slow(on: boolean): void } {
  const memory = memoryPresenceStore();
  let slow = false;
  const store: PresenceStore = {
    ...memory,
    connect: async (device, ttlMs) => {
      if (slow) await sleep(LANDS_AFTER_MS);
      return memory.connect(device, ttlMs);
    },
  };
  return { store, slow: (on) => void (slow = on) };
}

async function connected(userId: string): Promise<Socket> {
  const socket = await connectAs(server.url, { userId, companyId: "acme", deviceId: `${userId}-phone` });
  sockets.push(socket);
  return socket;
}

const online = async () => (await server.engine.presence("acme")).map((user) => user.userId);

test("a connect that lands after its deadline still announces the user online, and the disconnect after it takes them offline", async () => {
  const { store, slow } = slowConnectStore();
  server = await startTestServer({ presence: store, limits: { storeTimeoutMs: BOUND_MS } });
  const bob = await connected("bob");
  const heard = await followPresence(bob);
  await sleep(1_100); // let the window of bob's own arrival close

  slow(true);
  const ann = await connected("ann");
  slow(false);
  await waitFor(() => heard.some((update) => update.userId === "ann" && update.online), { message: "bob hears ann online" });
  expect(await online()).toEqual(["ann", "bob"]);

  ann.close();
  await waitFor(() => heard.some((update) => update.userId === "ann" && !update.online), { timeoutMs: 2_000, message: "bob hears ann offline" });
  expect(await online()).toEqual(["bob"]);
});

test("a disconnect before the late connect lands leaves the user offline once it does", async () => {
  const { store, slow } = slowConnectStore();
  server = await startTestServer({ presence: store, limits: { storeTimeoutMs: BOUND_MS } });
  const bob = await connected("bob");
  const heard = await followPresence(bob);

  slow(true);
  const ann = await connected("ann");
  slow(false);
  await sleep(BOUND_MS + 50);
  ann.close();
  await sleep(LANDS_AFTER_MS + 100);
  expect(await online()).toEqual(["bob"]);
  // Both announced in order: the late connect did bring ann online, the disconnect after it took her offline.
  await waitFor(() => heard.filter((update) => update.userId === "ann").length === 2, { timeoutMs: 2_000, message: "bob hears ann online, then offline" });
  expect(heard.filter((update) => update.userId === "ann").map((update) => update.online)).toEqual([true, false]);
});
