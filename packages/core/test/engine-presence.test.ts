import { afterEach, expect, test } from "vitest";
import { collect, followPresence, connectAs, request, sleep, startTestServer, type TestServer, waitFor } from "@truss/test-utils";
import type { PresenceUpdate } from "@truss/protocol";

let server: TestServer;
afterEach(() => server?.close());

test("presence:update fires on a user's first device online and last device offline, not in between", async () => {
  server = await startTestServer();
  const watcher = await connectAs(server.url, { userId: "bob", companyId: "acme" });
  const updates = await followPresence(watcher);

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

test("only sockets that follow presence hear its changes; follow: false stops them; a bad follow is refused", async () => {
  server = await startTestServer();
  const follower = await connectAs(server.url, { userId: "bob", companyId: "acme" });
  const bystander = await connectAs(server.url, { userId: "carol", companyId: "acme" });
  await sleep(1_100); // let the window of bob's and carol's own arrivals close
  const followed = await followPresence(follower);
  const overheard = { single: collect(bystander, "presence:update"), batched: collect(bystander, "presence:updates") };

  const laptop = await connectAs(server.url, { userId: "alice", companyId: "acme", deviceId: "laptop" });
  await waitFor(() => followed.length === 1, { message: "the follower hears alice" });
  expect(followed).toEqual([{ userId: "alice", online: true }]);

  expect(await request(follower, "presence:list", { follow: false })).toMatchObject({ ok: true });
  laptop.close();
  await waitFor(async () => !(await server.engine.isOnline("acme", "alice")), { message: "alice offline" });
  // The offline change went out at once to whoever follows, or waits in the company's window: let both pass.
  await sleep(1_200);
  expect(followed).toHaveLength(1);
  expect(overheard).toEqual({ single: [], batched: [] });

  expect((await request(follower, "presence:list", { follow: "yes" })).error.code).toBe("INVALID_PAYLOAD");
  follower.close();
  bystander.close();
});

test("two sockets of the same device count as one device", async () => {
  server = await startTestServer();
  const watcher = await connectAs(server.url, { userId: "bob", companyId: "acme" });
  const updates = await followPresence(watcher);
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

test("a burst of users coming online reaches each member as one change and one batch, not one message per user", async () => {
  server = await startTestServer();
  const watcher = await connectAs(server.url, { userId: "watcher", companyId: "acme" });
  await sleep(1100); // let the watcher's own window close
  expect(await request(watcher, "presence:list", { follow: true })).toMatchObject({ ok: true });
  const singles = collect(watcher, "presence:update");
  const batches = collect<{ updates: Array<{ userId: string; online: boolean }> }>(watcher, "presence:updates");
  const crew = await Promise.all(Array.from({ length: 8 }, (_, i) => connectAs(server.url, { userId: `crew-${i}`, companyId: "acme" })));
  await waitFor(() => singles.length + batches.reduce((n, b) => n + b.updates.length, 0) === 8, { timeoutMs: 3000 });
  expect(singles).toHaveLength(1);
  expect(batches).toHaveLength(1);
  const heard = [...singles, ...batches[0]!.updates] as Array<{ userId: string; online: boolean }>;
  expect(heard.map((u) => u.userId).sort()).toEqual(crew.map((_, i) => `crew-${i}`).sort());
  expect(heard.every((u) => u.online)).toBe(true);
  for (const socket of [watcher, ...crew]) socket.close();
});
