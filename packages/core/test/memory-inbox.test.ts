import { memoryInboxStore } from "@truss/core";
import { afterEach, describe, expect, test, vi } from "vitest";
import {
  CURSOR_OVERHEAD_BYTES,
  IDEMPOTENCY_KEY_OVERHEAD_BYTES,
  INBOX_MESSAGE_OVERHEAD_BYTES,
  USER_INBOX_OVERHEAD_BYTES,
} from "../src/inbox/memory.js";

const ann = { companyId: "acme", userId: "ann" };
const bob = { companyId: "acme", userId: "bob" };
const annPhone = { ...ann, deviceId: "phone" };

function manualClock(start = 1_700_000_000_000) {
  let current = start;
  return { now: () => current, set: (ms: number) => void (current = ms), advance: (ms: number) => void (current += ms) };
}

describe("memoryInboxStore", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  test("schedules no timers, so it never keeps the process alive", async () => {
    vi.useFakeTimers();
    const inbox = memoryInboxStore({ ttlMs: 1000 });
    const { message } = await inbox.append(ann, "expense:approved", {});
    await inbox.read(ann, null, 10);
    await inbox.ack(annPhone, message.id);
    await inbox.dropped();
    expect(vi.getTimerCount()).toBe(0);
  });

  test("a company's inboxes hold maxBytesPerCompany bytes together; past it an append is refused QUOTA_EXCEEDED and stores nothing", async () => {
    const clock = manualClock();
    const data = { note: "x".repeat(90) };
    const size = INBOX_MESSAGE_OVERHEAD_BYTES + "e".length + JSON.stringify(data).length;
    const inbox = memoryInboxStore({ maxBytesPerCompany: 2 * USER_INBOX_OVERHEAD_BYTES + 3 * size, ttlMs: 1_000, maxLength: 2, now: clock.now });
    await inbox.append(ann, "e", data);
    await inbox.append(bob, "e", data);
    await inbox.append(bob, "e", data);
    await expect(inbox.append(ann, "e", data)).rejects.toMatchObject({ name: "TrussError", code: "QUOTA_EXCEEDED" });
    expect(await inbox.read(ann, null, 10)).toHaveLength(1);
    // Another company is not held to it, and an append that pushes the user's own oldest out fits.
    await inbox.append({ companyId: "globex", userId: "ann" }, "e", data);
    await inbox.append(bob, "e", data);
    expect(await inbox.read(bob, null, 10)).toHaveLength(2);
    // Messages that expired, in any user's inbox, make room.
    clock.advance(1_000);
    await inbox.append(ann, "e", data);
    await inbox.append(ann, "e", data);
    await inbox.append(bob, "e", data);
    expect(await inbox.dropped()).toEqual({ expired: 4, overCap: 1 });
  });

  test("the quota counts each user's inbox and each message beyond their text, so tiny messages to many users are refused", async () => {
    const perUser = USER_INBOX_OVERHEAD_BYTES + INBOX_MESSAGE_OVERHEAD_BYTES + "e".length;
    const inbox = memoryInboxStore({ maxBytesPerCompany: 10 * perUser });
    for (let index = 0; index < 10; index++) await inbox.append({ companyId: "acme", userId: `user-${index}` }, "e", undefined);
    await expect(inbox.append({ companyId: "acme", userId: "user-10" }, "e", undefined)).rejects.toMatchObject({ code: "QUOTA_EXCEEDED" });
    // The refused user's inbox was not kept, nor counted: the company is exactly full, not over.
    await expect(inbox.append({ companyId: "acme", userId: "user-0" }, "", undefined)).rejects.toMatchObject({ code: "QUOTA_EXCEEDED" });
    expect(await inbox.read({ companyId: "acme", userId: "user-10" }, null, 10)).toEqual([]);
  });

  test("the quota counts idempotency keys, which a user keeps after the length cap dropped their messages", async () => {
    const key = (index: number) => `${index}-`.padEnd(200, "k");
    const perKey = IDEMPOTENCY_KEY_OVERHEAD_BYTES + 200;
    const perMessage = INBOX_MESSAGE_OVERHEAD_BYTES + "e".length;
    const inbox = memoryInboxStore({ maxLength: 2, maxBytesPerCompany: USER_INBOX_OVERHEAD_BYTES + 2 * perMessage + 8 * perKey });
    for (let index = 0; index < 8; index++) await inbox.append(ann, "e", undefined, { idempotencyKey: key(index) });
    await expect(inbox.append(ann, "e", undefined, { idempotencyKey: key(8) })).rejects.toMatchObject({ code: "QUOTA_EXCEEDED" });
    expect(await inbox.read(ann, null, 10)).toHaveLength(2);
    // Unkeyed messages still fit: they push the user's oldest out.
    await inbox.append(ann, "e", undefined);
  });

  test("the quota counts device cursors; an ack is never refused, and appends make room for it", async () => {
    const perMessage = INBOX_MESSAGE_OVERHEAD_BYTES + "e".length;
    const inbox = memoryInboxStore({ maxLength: 1, maxBytesPerCompany: USER_INBOX_OVERHEAD_BYTES + perMessage + CURSOR_OVERHEAD_BYTES });
    const { message } = await inbox.append(ann, "e", undefined);
    await inbox.ack({ ...ann, deviceId: "phone" }, message.id);
    await inbox.ack({ ...ann, deviceId: "laptop" }, message.id);
    expect(await inbox.cursor({ ...ann, deviceId: "laptop" })).toBe(message.id);
    await expect(inbox.append(bob, "e", undefined)).rejects.toMatchObject({ code: "QUOTA_EXCEEDED" });
  });

  test("an inbox left with no message or key is forgotten with its cursors, and its bytes go back to the company", async () => {
    const clock = manualClock();
    const perUser = USER_INBOX_OVERHEAD_BYTES + INBOX_MESSAGE_OVERHEAD_BYTES + "e".length;
    const perKey = IDEMPOTENCY_KEY_OVERHEAD_BYTES + "once".length;
    const inbox = memoryInboxStore({ ttlMs: 1_000, maxBytesPerCompany: 3 * (perUser + perKey), now: clock.now });
    const users = ["ann", "bob", "cy"].map((userId) => ({ companyId: "acme", userId }));
    // Each user's key is forgotten at the TTL, with their message.
    for (const user of users) await inbox.append(user, "e", undefined, { idempotencyKey: "once" });
    await inbox.ack({ ...users[0]!, deviceId: "phone" }, "1-0");
    clock.advance(1_000);
    // The append that finds the company full forgets every inbox that expired, not only its own user's.
    const fresh = ["dee", "eve", "fay"].map((userId) => ({ companyId: "acme", userId }));
    for (const user of fresh) await inbox.append(user, "e", undefined);
    await expect(inbox.append({ companyId: "acme", userId: "gus" }, "e", undefined)).rejects.toMatchObject({ code: "QUOTA_EXCEEDED" });
    expect(await inbox.cursor({ ...users[0]!, deviceId: "phone" })).toBeNull();
    // dropped() forgets them as well, and a forgotten user's next id is still newer than any they had.
    clock.advance(1_000);
    await inbox.dropped();
    for (const user of users) await inbox.append(user, "e", undefined);
    expect((await inbox.append(users[0]!, "e", undefined)).message.id).toBe(`${clock.now()}-1`);
  });

  test("a user's inbox keeps maxCursorsPerUser device cursors, forgetting the one moved longest ago", async () => {
    const inbox = memoryInboxStore({ maxCursorsPerUser: 2 });
    const { message } = await inbox.append(ann, "e", 1);
    for (const deviceId of ["laptop", "phone", "tablet"]) await inbox.ack({ ...ann, deviceId }, message.id);
    expect(await inbox.cursor({ ...ann, deviceId: "laptop" })).toBeNull();
    expect(await inbox.cursor({ ...ann, deviceId: "phone" })).toBe(message.id);
    expect(await inbox.cursor({ ...ann, deviceId: "tablet" })).toBe(message.id);
    // Moving a cursor makes it the newest.
    const next = (await inbox.append(ann, "e", 2)).message;
    await inbox.ack({ ...ann, deviceId: "phone" }, next.id);
    await inbox.ack({ ...ann, deviceId: "desk" }, next.id);
    expect(await inbox.cursor({ ...ann, deviceId: "tablet" })).toBeNull();
    expect(await inbox.cursor({ ...ann, deviceId: "phone" })).toBe(next.id);
  });

  test("quotas must be positive integers", () => {
    expect(() => memoryInboxStore({ maxBytesPerCompany: 0 })).toThrow(RangeError);
    expect(() => memoryInboxStore({ maxCursorsPerUser: 1.5 })).toThrow(RangeError);
  });

  test("ids count up within a millisecond and never go back with the clock", async () => {
    const clock = manualClock(5000);
    const inbox = memoryInboxStore({ now: clock.now });
    const ids = [];
    ids.push((await inbox.append(ann, "e", 1)).message.id, (await inbox.append(ann, "e", 2)).message.id);
    clock.set(4000);
    ids.push((await inbox.append(ann, "e", 3)).message.id);
    clock.set(6000);
    ids.push((await inbox.append(ann, "e", 4)).message.id);
    expect(ids).toEqual(["5000-0", "5000-1", "5000-2", "6000-0"]);
  });

  test("ids keep increasing after every message was dropped", async () => {
    const clock = manualClock(5000);
    const inbox = memoryInboxStore({ now: clock.now, maxLength: 1 });
    await inbox.append(ann, "e", 1);
    await inbox.append(ann, "e", 2);
    expect((await inbox.append(ann, "e", 3)).message.id).toBe("5000-2");
  });

  test("a message expires at the instant its TTL runs out", async () => {
    const clock = manualClock();
    const inbox = memoryInboxStore({ now: clock.now, ttlMs: 1000 });
    await inbox.append(ann, "e", {});
    clock.advance(999);
    expect(await inbox.read(ann, null, 10)).toHaveLength(1);
    clock.advance(1);
    expect(await inbox.read(ann, null, 10)).toEqual([]);
    expect(await inbox.dropped()).toEqual({ expired: 1, overCap: 0 });
  });

  test("dropped() counts expiry in inboxes nobody touched since", async () => {
    const clock = manualClock();
    const inbox = memoryInboxStore({ now: clock.now, ttlMs: 1000 });
    await inbox.append(ann, "e", {});
    await inbox.append(bob, "e", {});
    clock.advance(1000);
    expect(await inbox.dropped()).toEqual({ expired: 2, overCap: 0 });
    expect(await inbox.dropped()).toEqual({ expired: 2, overCap: 0 });
  });

  test("stored data is a copy, in both directions", async () => {
    const inbox = memoryInboxStore();
    const data = { items: ["rebar"] };
    const { message: appended } = await inbox.append(ann, "e", data);
    data.items.push("mutated");
    (appended.data as typeof data).items.push("mutated");
    const [read] = await inbox.read(ann, null, 1);
    (read?.data as typeof data).items.push("mutated");
    expect((await inbox.read(ann, null, 1))[0]?.data).toEqual({ items: ["rebar"] });
  });

  test("data that cannot be stored rejects and stores nothing", async () => {
    const inbox = memoryInboxStore();
    await expect(inbox.append(ann, "e", { callback: () => 1 })).rejects.toThrow();
    expect(await inbox.read(ann, null, 10)).toEqual([]);
  });

  test("ids that are not <ms>-<seq> are refused rather than ordered arbitrarily", async () => {
    const inbox = memoryInboxStore();
    await expect(inbox.ack(annPhone, "latest")).rejects.toThrow(TypeError);
    await expect(inbox.read(ann, "1-x", 10)).rejects.toThrow(TypeError);
    expect(await inbox.cursor(annPhone)).toBeNull();
  });

  test("a TTL or cap that would drop everything is refused", () => {
    expect(() => memoryInboxStore({ ttlMs: 0 })).toThrow(RangeError);
    expect(() => memoryInboxStore({ maxLength: 0 })).toThrow(RangeError);
    expect(() => memoryInboxStore({ maxLength: 2.5 })).toThrow(RangeError);
  });
});
