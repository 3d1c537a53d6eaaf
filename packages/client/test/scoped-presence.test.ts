import { afterEach, expect, test } from "vitest";
import type { ScopedPresenceChange, ScopedPresenceMember, TrussClientError } from "@truss/client";
import { sleep, waitFor } from "@truss/test-utils";
import { alice, bob, closeAll, openClient, reconnection, startProxy, startServer, waitForStatus } from "./helpers.js";

afterEach(closeAll);

const project = { topic: "project:p-17" };
const report = { type: "site-report", id: "r-1" };
const allowAll = () => true;
const users = (others: ScopedPresenceMember[]) => others.map((member) => member.userId);

test("two devices in a site report see each other join, edit a field and leave", async () => {
  const server = await startServer({ authorize: allowAll });
  const phone = openClient(server.url, alice);
  const laptop = openClient(server.url, bob);
  await Promise.all([phone.documents.watch(report.type, report.id), laptop.documents.watch(report.type, report.id)]);

  const onPhone = phone.presence.in(report);
  expect(phone.presence.in({ type: "site-report", id: "r-1" })).toBe(onPhone);
  const heard: ScopedPresenceChange[] = [];
  onPhone.onChange((change) => void heard.push(change));
  await onPhone.join({ viewing: true });
  expect(onPhone.joined).toBe(true);
  expect(onPhone.others).toEqual([]);

  const onLaptop = laptop.presence.in(report);
  await onLaptop.join({ editing: "notes" });
  expect(users(onLaptop.others)).toEqual(["alice"]);
  await waitFor(() => users(onPhone.others).join() === "bob", { message: "the phone sees bob" });
  expect(onPhone.others[0]).toMatchObject({ userId: "bob", deviceId: "bob-laptop", state: { editing: "notes" } });

  onLaptop.update({ editing: "weather" });
  await waitFor(() => (onPhone.others[0]?.state as { editing?: string } | undefined)?.editing === "weather", { message: "bob's field" });
  expect(heard.map((change) => change.change)).toEqual(["joined", "updated"]);
  expect((await server.engine.presence.in("acme", report).list()).map((member) => member.userId).sort()).toEqual(["alice", "bob"]);

  await onLaptop.leave();
  expect(onLaptop.joined).toBe(false);
  await waitFor(() => onPhone.others.length === 0, { message: "bob left" });
  expect(heard.at(-1)).toMatchObject({ change: "left", member: { userId: "bob" } });
});

test("a cut connection leaves at once, and the client joins again on reconnection with the state it set while away", async () => {
  const server = await startServer({ authorize: allowAll, presenceTiming: { ttlMs: 600 } });
  const proxy = await startProxy(server.port);
  const watcher = openClient(server.url, alice);
  const field = openClient(proxy.url, bob);
  await Promise.all([watcher.subscribe(project.topic), field.subscribe(project.topic)]);
  const seen = watcher.presence.in(project);
  await seen.join({});
  const mine = field.presence.in(project);
  await mine.join({ editing: "notes" });
  await waitFor(() => seen.others.length === 1);
  const before = seen.others[0]!.memberId;

  const back = reconnection(field);
  const heard: ScopedPresenceChange[] = [];
  seen.onChange((change) => heard.push(change));
  proxy.cut();
  // His leave may come in one batch with his rejoin, when he is back within the window.
  await waitFor(() => heard.some((change) => change.change === "left" && change.member.memberId === before), { message: "bob gone when his connection dropped" });
  mine.update({ editing: "photos" });
  await back;
  await waitFor(() => seen.others.length === 1 && seen.others[0]!.memberId !== before && (seen.others[0]!.state as { editing?: string }).editing === "photos", {
    message: "bob back on his new connection, with his latest state",
  });
  await waitFor(() => mine.joined);
  expect(users(mine.others)).toEqual(["alice"]);
});

test("a scope the client does not hold is refused; losing the subscription ends the presence, and both sides see it", async () => {
  let allowed = true;
  const server = await startServer({ authorize: (_principal, request) => request.action !== "topic:subscribe" || allowed });
  const watcher = openClient(server.url, alice);
  const member = openClient(server.url, bob);
  const refused = await member.presence.in(project).join({}).catch((error: TrussClientError) => error);
  expect(refused).toMatchObject({ code: "FORBIDDEN" });
  expect(member.presence.in(project).joined).toBe(false);

  await Promise.all([watcher.subscribe(project.topic), member.subscribe(project.topic)]);
  const seen = watcher.presence.in(project);
  await seen.join({});
  const mine = member.presence.in(project);
  const mineHeard: ScopedPresenceChange[] = [];
  mine.onChange((change) => void mineHeard.push(change));
  await mine.join({});
  await waitFor(() => seen.others.length === 1);

  allowed = false;
  expect((await server.engine.unsubscribeUser("acme", "bob", project.topic)).sockets).toBe(1);
  await waitFor(() => seen.others.length === 0, { message: "the watcher sees bob leave" });
  await waitFor(() => !mine.joined, { message: "bob's client knows it left" });
  expect(mineHeard.at(-1)).toMatchObject({ change: "left", member: { userId: "bob" } });
  expect(await server.engine.presence.in("acme", project).list()).toHaveLength(1);
});

test("a client updating its state 100 times a second reaches the others at most about 10 times a second", async () => {
  const server = await startServer({ authorize: allowAll });
  const watcher = openClient(server.url, alice);
  const typist = openClient(server.url, bob);
  const errors: TrussClientError[] = [];
  typist.onError((error) => void errors.push(error));
  await Promise.all([watcher.documents.watch(report.type, report.id), typist.documents.watch(report.type, report.id)]);
  const seen = watcher.presence.in(report);
  const updates: ScopedPresenceChange[] = [];
  seen.onChange((change) => {
    if (change.change === "updated") updates.push(change);
  });
  await seen.join({});
  const typing = typist.presence.in(report);
  await typing.join({ typed: 0 });
  await waitForStatus(typist, "connected");

  const started = Date.now();
  let typed = 0;
  while (Date.now() - started < 3000) {
    typed += 1;
    typing.update({ typed });
    await sleep(10);
  }
  const elapsedS = (Date.now() - started) / 1000;
  await sleep(400);
  expect(typed).toBeGreaterThan(150);
  expect(updates.length).toBeLessThanOrEqual(Math.ceil(elapsedS * 10) + 2);
  expect(updates.length).toBeGreaterThanOrEqual(Math.floor(elapsedS * 10) - 6);
  expect(updates.at(-1)!.member.state).toEqual({ typed });
  expect(errors).toEqual([]);
});

test("leave() while the join is still on its way leaves on the server too: a screen opened and closed at once leaves no one behind", async () => {
  // The policy takes a moment over the join, as a database-backed one does.
  const server = await startServer({
    authorize: async (_principal: unknown, request: { action: string }) => {
      if (request.action === "presence:join") await sleep(30);
      return true;
    },
  });
  const phone = openClient(server.url, alice);
  const laptop = openClient(server.url, bob);
  await Promise.all([phone.documents.watch(report.type, report.id), laptop.documents.watch(report.type, report.id)]);
  const onLaptop = laptop.presence.in(report);
  await onLaptop.join(null);
  const heard: ScopedPresenceChange[] = [];
  onLaptop.onChange((change) => void heard.push(change));

  const onPhone = phone.presence.in(report);
  for (let round = 0; round < 3; round++) {
    const joining = onPhone.join({ editing: "notes" });
    await onPhone.leave();
    await joining;
    expect(onPhone.joined).toBe(false);
    await waitFor(async () => (await server.engine.presence.in("acme", report).list()).every((member) => member.userId !== "alice"), {
      message: "alice is not listed",
    });
  }
  await sleep(200);
  expect((await server.engine.presence.in("acme", report).list()).map((member) => member.userId)).toEqual(["bob"]);
  expect(users(onLaptop.others)).toEqual([]);
  expect(heard.filter((change) => change.member.userId === "alice").at(-1)?.change ?? "left").toBe("left");
});
