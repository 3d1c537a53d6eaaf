import { afterEach, expect, test } from "vitest";
import type { PresenceUser } from "@truss/protocol";
import { sleep, waitFor, type TestServer } from "@truss/test-utils";
import { alice, bob, closeAll, openClient, startServer, waitForStatus } from "./helpers.js";

let server: TestServer | undefined;
afterEach(closeAll);

const online = (lists: PresenceUser[][]) => lists.at(-1)?.map((user) => user.userId);

test("a subscription sees a second user come and go, with the whole list each time", async () => {
  server = await startServer();
  const watcher = openClient(server.url, alice);
  const lists: PresenceUser[][] = [];
  watcher.presence.subscribe((users) => void lists.push(users));
  await waitFor(() => online(lists)?.join() === "alice", { message: "alice alone" });

  const office = openClient(server.url, bob);
  await waitFor(() => online(lists)?.join() === "alice,bob", { message: "bob online" });
  expect(lists.at(-1)!.find((user) => user.userId === "bob")!.devices.map((device) => device.deviceId)).toEqual(["bob-laptop"]);
  expect(watcher.presence.current).toBe(lists.at(-1));

  office.close();
  await waitFor(() => online(lists)?.join() === "alice", { message: "bob offline" });
  expect(lists.map((users) => users.map((user) => user.userId).join())).toEqual(["alice", "alice,bob", "alice"]);
});

test("a second device of a present user changes the list; a late subscriber gets the current list; unsubscribe stops calls", async () => {
  server = await startServer();
  const watcher = openClient(server.url, bob);
  const early: PresenceUser[][] = [];
  const stop = watcher.presence.subscribe((users) => void early.push(users));
  await waitForStatus(watcher, "connected");
  openClient(server.url, alice);
  await waitFor(() => online(early)?.join() === "alice,bob");

  const late: PresenceUser[][] = [];
  watcher.presence.subscribe((users) => void late.push(users));
  await waitFor(() => late.length >= 1);
  expect(online(late)).toEqual(["alice", "bob"]);

  stop();
  const count = early.length;
  // A second device brings no presence:update (alice was online already); a later update refreshes the devices too.
  openClient(server.url, { ...alice, deviceId: "alice-tablet" });
  await sleep(100);
  openClient(server.url, { userId: "carol", companyId: "acme", deviceId: "carol-phone" });
  await waitFor(() => online(late)?.join() === "alice,bob,carol");
  expect(late.at(-1)!.find((user) => user.userId === "alice")!.devices.map((device) => device.deviceId).sort()).toEqual(["alice-phone", "alice-tablet"]);
  expect(early).toHaveLength(count);
});

test("the socket follows the company's presence only while something is subscribed", async () => {
  server = await startServer();
  const followers = () => server!.engine.io!.of("/").adapter.rooms.get("company-presence:acme")?.size ?? 0;
  const client = openClient(server.url, alice);
  await waitForStatus(client, "connected");
  await sleep(100);
  expect(followers()).toBe(0);

  const stop = client.presence.subscribe(() => undefined);
  await waitFor(() => followers() === 1, { message: "following once subscribed" });
  const stopSecond = client.presence.subscribe(() => undefined);
  stop();
  await sleep(100);
  expect(followers()).toBe(1);
  stopSecond();
  await waitFor(() => followers() === 0, { message: "no longer following once the last subscriber left" });
});
