import { memoryPresenceStore } from "@truss/core";
import { afterEach, describe, expect, test, vi } from "vitest";

/** A clock the test moves by hand, so expiry is checked at the exact boundary. */
function manualClock(start = 1_700_000_000_000) {
  let current = start;
  return { now: () => current, advance: (ms: number) => void (current += ms) };
}

const device = { companyId: "acme", userId: "ann", deviceId: "phone" };
const laptop = { ...device, deviceId: "laptop" };

describe("memoryPresenceStore", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  test("schedules no timers, so it never keeps the process alive", async () => {
    vi.useFakeTimers();
    const store = memoryPresenceStore();
    await store.connect(device, 1000);
    await store.heartbeat([device], 1000);
    await store.sweepExpired();
    await store.list("acme");
    expect(vi.getTimerCount()).toBe(0);
  });

  test("a device is live until the instant its TTL runs out", async () => {
    const clock = manualClock();
    const store = memoryPresenceStore({ now: clock.now });
    await store.connect(device, 1000);
    clock.advance(999);
    expect(await store.isOnline("acme", "ann")).toBe(true);
    clock.advance(1);
    expect(await store.isOnline("acme", "ann")).toBe(false);
    expect(await store.sweepExpired()).toEqual([{ companyId: "acme", userId: "ann", online: false }]);
  });

  test("reconnecting before a sweep reports online, and the sweep then reports nothing", async () => {
    const clock = manualClock();
    const store = memoryPresenceStore({ now: clock.now });
    await store.connect(device, 1000);
    clock.advance(1500);
    expect(await store.connect(laptop, 1000)).toEqual({ companyId: "acme", userId: "ann", online: true });
    expect(await store.sweepExpired()).toEqual([]);
    expect((await store.list("acme"))[0]?.devices.map((listed) => listed.deviceId)).toEqual(["laptop"]);
  });

  test("disconnect of a lapsed device leaves the offline transition to the sweep", async () => {
    const clock = manualClock();
    const store = memoryPresenceStore({ now: clock.now });
    await store.connect(device, 1000);
    clock.advance(1500);
    expect(await store.disconnect(device)).toBeNull();
    expect(await store.sweepExpired()).toEqual([{ companyId: "acme", userId: "ann", online: false }]);
    expect(await store.sweepExpired()).toEqual([]);
  });

  test("the last live device leaving forgets lapsed siblings, so no sweep reports the user again", async () => {
    const clock = manualClock();
    const store = memoryPresenceStore({ now: clock.now });
    await store.connect(laptop, 500);
    await store.connect(device, 5000);
    clock.advance(1000);
    expect(await store.disconnect(device)).toEqual({ companyId: "acme", userId: "ann", online: false });
    expect(await store.sweepExpired()).toEqual([]);
  });

  test("a heartbeat revives a lapsed, unswept device as it was", async () => {
    const clock = manualClock();
    const store = memoryPresenceStore({ now: clock.now });
    await store.connect(device, 1000);
    const connectedAt = clock.now();
    clock.advance(1500);
    await store.heartbeat([device], 1000);
    expect(await store.list("acme")).toEqual([
      { userId: "ann", devices: [{ deviceId: "phone", connectedAt, lastSeen: connectedAt + 1500 }] },
    ]);
    expect(await store.sweepExpired()).toEqual([]);
  });

  test("devices that connected in the same millisecond are listed in arrival order", async () => {
    const store = memoryPresenceStore({ now: () => 42 });
    await store.connect({ ...device, deviceId: "z" }, 1000);
    await store.connect({ ...device, deviceId: "a" }, 1000);
    expect((await store.list("acme"))[0]?.devices.map((listed) => listed.deviceId)).toEqual(["z", "a"]);
  });
});
