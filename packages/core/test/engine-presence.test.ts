import { afterEach, expect, test } from "vitest";
import { collect, connectAs, request, sleep, startTestServer, waitFor, type TestServer } from "@truss/test-utils";
import type { PresenceUpdate } from "@truss/core";

let server: TestServer;
afterEach(() => server?.close());

test("presence:update fires on a user's first device online and last device offline, not in between", async () => {
  server = await startTestServer();
  const watcher = await connectAs(server.url, { userId: "bob", companyId: "acme" });
  const updates = collect<PresenceUpdate>(watcher, "presence:update");

  const laptop = await connectAs(server.url, { userId: "alice", companyId: "acme", deviceId: "laptop" });
  await waitFor(() => updates.length === 1);
  const phone = await connectAs(server.url, { userId: "alice", companyId: "acme", deviceId: "phone" });

  const listed = await request(watcher, "presence:list", {});
  expect(listed.ok).toBe(true);
  const alice = listed.users.find((u: { userId: string }) => u.userId === "alice");
  expect(alice.devices.map((d: { deviceId: string }) => d.deviceId).sort()).toEqual(["laptop", "phone"]);
  expect(await server.engine.presence("acme")).toHaveLength(2);

  laptop.close();
  await sleep(150);
  expect(updates).toEqual([{ userId: "alice", online: true }]);
  expect(await server.engine.isOnline("acme", "alice")).toBe(true);

  phone.close();
  await waitFor(() => updates.length === 2);
  expect(updates[1]).toEqual({ userId: "alice", online: false });
  expect(await server.engine.isOnline("acme", "alice")).toBe(false);
  watcher.close();
});

test("two sockets of the same device count as one device", async () => {
  server = await startTestServer();
  const watcher = await connectAs(server.url, { userId: "bob", companyId: "acme" });
  const updates = collect<PresenceUpdate>(watcher, "presence:update");
  const tabA = await connectAs(server.url, { userId: "alice", companyId: "acme", deviceId: "laptop" });
  const tabB = await connectAs(server.url, { userId: "alice", companyId: "acme", deviceId: "laptop" });
  tabA.close();
  await sleep(150);
  expect(await server.engine.isOnline("acme", "alice")).toBe(true);
  tabB.close();
  await waitFor(() => updates.length === 2);
  expect(updates.map((u) => u.online)).toEqual([true, false]);
  watcher.close();
});

test("a device that reconnects while its disconnect is still being stored ends up online", async () => {
  const { memoryPresenceStore } = await import("@truss/core");
  const store = memoryPresenceStore();
  const slowStore = {
    ...store,
    connect: store.connect.bind(store),
    heartbeat: store.heartbeat.bind(store),
    sweepExpired: store.sweepExpired.bind(store),
    isOnline: store.isOnline.bind(store),
    list: store.list.bind(store),
    disconnect: async (...args: Parameters<typeof store.disconnect>) => {
      await sleep(200);
      return store.disconnect(...args);
    },
  };
  server = await startTestServer({ presence: slowStore });
  const phone = { userId: "alice", companyId: "acme", deviceId: "phone" };
  const first = await connectAs(server.url, phone);
  first.close();
  await sleep(20);
  const second = await connectAs(server.url, phone);
  await sleep(400);
  expect(await server.engine.isOnline("acme", "alice")).toBe(true);
  second.close();
});
