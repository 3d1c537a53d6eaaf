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
