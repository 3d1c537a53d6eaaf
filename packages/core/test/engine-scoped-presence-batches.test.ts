import { afterEach, expect, test } from "vitest";
import { connect, type ScopedPresenceChange, type TrussClient } from "@truss/client";
import type { ScopedPresenceMemberChange } from "@truss/protocol";
import { changeStates, connectAs, joinScope, mostFramesWithin, request, signToken, sleep, startTestServer, type TestServer, waitFor } from "@truss/test-utils";
import type { Socket } from "socket.io-client";

/**
 * A scope's changes go out in one batch per window, to the whole scope:
 * however many members change, each one hears about ten frames a second,
 * and ends with every other member's latest state.
 */
let server: TestServer | undefined;
const sockets: Socket[] = [];
const clients: TrussClient[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  for (const client of clients.splice(0)) client.close();
  await server?.close();
  server = undefined;
});

const topic = { topic: "project:p-17" };

async function members(count: number, prefix: string): Promise<Socket[]> {
  const opened = await Promise.all(Array.from({ length: count }, (_, index) => connectAs(server!.url, { userId: `${prefix}${index}`, companyId: "acme" })));
  sockets.push(...opened);
  for (const socket of opened) expect((await request(socket, "topic:subscribe", topic)).ok).toBe(true);
  return opened;
}

/** Every member change of `memberId` that a socket's batches carried. */
const changesAbout = (batches: Array<{ changes: ScopedPresenceMemberChange[] }>, memberId: string) =>
  batches.flatMap((batch) => batch.changes).filter((change) => change.member.memberId === memberId);

test("50 members each changing their state 20 times a second for 2 s: each hears at most about 10 frames a second, and ends with every other's latest state", async () => {
  server = await startTestServer({ authorize: () => true });
  const crew = await members(50, "m");
  const views = await joinScope(crew, topic);
  await sleep(300);

  const startedAt = Date.now();
  const last = await changeStates(crew, topic, { perSecond: 20, durationMs: 2000 });
  const elapsedMs = Date.now() - startedAt;
  await sleep(500);

  for (const view of views) {
    const frames = view.frames.filter((at) => at >= startedAt);
    // One frame a window (100 ms), give or take one where a quiet scope's first change went out alone and timers ran late.
    expect(mostFramesWithin(frames)).toBeLessThanOrEqual(12);
    expect(frames.length).toBeLessThanOrEqual(Math.ceil(elapsedMs / 100) + 6);
    for (const other of crew) if (other !== view.socket) expect(view.states.get(other.id!), `${view.socket.id} sees ${other.id}`).toEqual(last.get(other.id!));
  }
  // Each member's own changes were coalesced to about 10 a second, so the scope sent far fewer changes than asked; the batches carried them all.
  const heard = views[0]!.batches.flatMap((batch) => batch.changes).filter((change) => change.change === "updated").length;
  expect(heard).toBeGreaterThan(49 * 10);
});

test("in one window a join then a leave goes out as the leave alone, and a join then an update as the join with the latest state; the client applies the batch", async () => {
  server = await startTestServer({ authorize: () => true, scopedPresenceLimits: { batchWindowMs: 400 } });
  const [ann, ben, carl, dave] = await members(4, "u");
  const [annView] = await joinScope([ann!], topic);
  const watcher = connect(server.url, { deviceId: "w-phone", token: signToken({ userId: "watcher", companyId: "acme" }) });
  clients.push(watcher);
  await watcher.subscribe(topic.topic);
  const seen = watcher.presence.in(topic);
  await seen.join({});
  await sleep(900);
  const heard: ScopedPresenceChange[] = [];
  seen.onChange((change) => heard.push(change));
  let lists = 0;
  seen.subscribe(() => (lists += 1));
  await sleep(10);
  lists = 0;

  // Ben's join after a quiet window goes out at once and opens a window; the rest wait for its end.
  const framesBefore = annView!.frames.length;
  await joinScope([ben!], topic, () => ({ field: "notes" }));
  await waitFor(() => annView!.frames.length === framesBefore + 1, { message: "ben's join, alone and at once" });
  await request(carl!, "presence:join", { scope: topic, state: { field: "weather" } });
  await request(carl!, "presence:leave", { scope: topic });
  await request(dave!, "presence:join", { scope: topic, state: { field: null } });
  await request(dave!, "presence:set", { scope: topic, state: { field: "photos" } });
  await waitFor(() => annView!.frames.length === framesBefore + 2, { message: "the window's batch" });
  await sleep(300);

  const batch = annView!.batches.at(-1)!;
  expect(changesAbout([batch], carl!.id!)).toEqual([{ change: "left", member: expect.objectContaining({ userId: "u2", state: { field: "weather" } }) }]);
  expect(changesAbout([batch], dave!.id!)).toEqual([{ change: "joined", member: expect.objectContaining({ userId: "u3", state: { field: "photos" } }) }]);
  expect(changesAbout(annView!.batches, carl!.id!)).toHaveLength(1);
  expect(annView!.frames.length).toBe(framesBefore + 2);

  // The client saw each member change of the batch, and one new list for the whole batch.
  await waitFor(() => seen.others.length === 3);
  expect(seen.others.map((member) => [member.userId, member.state])).toEqual([
    ["u0", null],
    ["u1", { field: "notes" }],
    ["u3", { field: "photos" }],
  ]);
  expect(heard.map((change) => [change.member.userId, change.change])).toEqual([
    ["u1", "joined"],
    ["u2", "left"],
    ["u3", "joined"],
  ]);
  expect(heard.every((change) => "topic" in change.scope && change.scope.topic === topic.topic)).toBe(true);
  expect(lists).toBe(2);
});

test("a window whose changes pass maxBatchBytes goes out as several batches, each within the cap", async () => {
  server = await startTestServer({ authorize: () => true, scopedPresenceLimits: { batchWindowMs: 400, maxBatchBytes: 600 } });
  const [ann, ben, ...crew] = await members(12, "c");
  const [annView] = await joinScope([ann!], topic);
  await sleep(900);
  await joinScope([ben!], topic);
  await sleep(50);
  const framesBefore = annView!.frames.length;
  await Promise.all(crew.map((socket) => request(socket, "presence:join", { scope: topic, state: { n: 1 } })));
  await sleep(900);
  const batches = annView!.batches.slice(framesBefore);
  // About 170 bytes a change: three or so a batch.
  expect(batches.length).toBeGreaterThanOrEqual(3);
  for (const batch of batches) expect(Buffer.byteLength(JSON.stringify(batch))).toBeLessThanOrEqual(600);
  expect(batches.flatMap((batch) => batch.changes.map((change) => change.member.memberId)).sort()).toEqual(crew.map((socket) => socket.id).sort());
  expect(annView!.frames.length).toBe(framesBefore + batches.length);
});

test("a window's batch of one member's changes does not go back to that member; a batch of several members' goes to each", async () => {
  server = await startTestServer({ authorize: () => true, scopedPresenceLimits: { batchWindowMs: 300 } });
  const [ann, ben, carl] = await members(3, "e");
  const [annView, benView, carlView] = await joinScope([ann!, ben!, carl!], topic);
  await sleep(700);

  // Ben types: his first change goes out at once, the next ones in the window's batch.
  const benFramesBefore = benView!.frames.length;
  for (let n = 1; n <= 4; n++) {
    await request(ben!, "presence:set", { scope: topic, state: { n } });
    await sleep(110);
  }
  await waitFor(() => annView!.states.get(ben!.id!) !== undefined && (annView!.states.get(ben!.id!) as { n: number }).n === 4, { message: "ben's last state at ann" });
  await sleep(700);
  expect(changesAbout(benView!.batches.slice(benFramesBefore), ben!.id!)).toEqual([]);
  expect(benView!.frames.length).toBe(benFramesBefore);

  // Ben and Carl in one window: one batch for both, which each hears whole.
  const carlFramesBefore = carlView!.frames.length;
  await request(ann!, "presence:set", { scope: topic, state: { opens: "window" } });
  await request(ben!, "presence:set", { scope: topic, state: { n: 5 } });
  await request(carl!, "presence:set", { scope: topic, state: { n: 1 } });
  await waitFor(() => carlView!.batches.slice(carlFramesBefore).some((batch) => batch.changes.length === 2), { message: "the mixed batch" });
  const mixed = carlView!.batches.slice(carlFramesBefore).find((batch) => batch.changes.length === 2)!;
  expect(mixed.changes.map((change) => change.member.memberId).sort()).toEqual([ben!.id, carl!.id].sort());
});
