import assert from "node:assert/strict";
import type { PresenceStore } from "@truss/core";
import { isPlausibleTimestamp, sleep, uniqueId } from "./fixtures.js";
import { freshDevice, LONG_TTL_MS, type PresenceCases, sibling, transitionOf } from "./presence-fixtures.js";
import { registerPresenceDeviceIdCases } from "./presence-device-ids.js";
import { registerPresenceSharedBackendCases } from "./presence-shared.js";
import { registerPresenceTtlCases } from "./presence-ttl.js";
import { caseRegistrar } from "./registrar.js";
import type { Factory, SuiteOptions, TestFunction } from "./runner.js";

/** Capabilities of the presence store under test, and the suite's hooks. */
export interface PresenceSuiteOptions extends SuiteOptions<PresenceStore> {
  /**
   * Calling the factory twice gives two handles on the same data, as two
   * engine nodes sharing one Redis would hold. Enables the cases where both
   * handles race to report the same transition, which must be reported once.
   */
  sharedBackend?: boolean;
}

/**
 * Registers the {@link PresenceStore} conformance cases with `test`. The store
 * is created by `factory` once per case (twice for shared-backend cases) and
 * every case uses fresh random company, user and device ids.
 *
 * @example
 * presenceStoreSuite(test, () => redisPresenceStore({ redis }), { sharedBackend: true });
 */
export function presenceStoreSuite(
  test: TestFunction,
  factory: Factory<PresenceStore>,
  options: PresenceSuiteOptions = {},
): void {
  const cases = caseRegistrar(test, factory, options, { prefix: "PresenceStore", factoryOptions: undefined });
  registerPresenceTransitionCases(cases);
  registerPresenceListingCases(cases);
  registerPresenceDeviceIdCases(cases);
  registerPresenceTtlCases(cases);
  if (options.sharedBackend) registerPresenceSharedBackendCases(cases);
}

function registerPresenceTransitionCases(cases: PresenceCases): void {
  cases.withInstance("connect of a user's first device reports the user online", async (store) => {
    const device = freshDevice();
    assert.deepEqual(await store.connect(device, LONG_TTL_MS), transitionOf(device, true));
    assert.equal(await store.isOnline(device.companyId, device.userId), true);
  });

  cases.withInstance("a second device is no transition; the last device to leave is", async (store) => {
    const phone = freshDevice();
    const laptop = sibling(phone);
    assert.deepEqual(await store.connect(phone, LONG_TTL_MS), transitionOf(phone, true));
    assert.equal(await store.connect(laptop, LONG_TTL_MS), null);
    assert.equal(await store.disconnect(phone), null);
    assert.equal(await store.isOnline(phone.companyId, phone.userId), true);
    assert.deepEqual(await store.disconnect(laptop), transitionOf(laptop, false));
    assert.equal(await store.isOnline(phone.companyId, phone.userId), false);
    assert.deepEqual(await store.list(phone.companyId), []);
  });

  cases.withInstance("connect of a device that is already online is no transition", async (store) => {
    const device = freshDevice();
    await store.connect(device, LONG_TTL_MS);
    assert.equal(await store.connect(device, LONG_TTL_MS), null);
    // Counted once, so a single disconnect takes the user offline.
    assert.deepEqual(await store.disconnect(device), transitionOf(device, false));
  });

  cases.withInstance("disconnect of a device that is not online reports nothing", async (store) => {
    const device = freshDevice();
    assert.equal(await store.disconnect(device), null);
    await store.connect(device, LONG_TTL_MS);
    assert.equal(await store.disconnect(sibling(device)), null);
    assert.equal(await store.isOnline(device.companyId, device.userId), true);
    await store.disconnect(device);
    assert.equal(await store.disconnect(device), null);
  });

  cases.withInstance("a user who went offline is reported online again on reconnect", async (store) => {
    const device = freshDevice();
    await store.connect(device, LONG_TTL_MS);
    await store.disconnect(device);
    assert.deepEqual(await store.connect(device, LONG_TTL_MS), transitionOf(device, true));
  });

  cases.withInstance("heartbeat re-adds a device the store does not know and reports its user online", async (store) => {
    const device = freshDevice();
    assert.deepEqual(await store.heartbeat([device], LONG_TTL_MS), [transitionOf(device, true)]);
    assert.equal(await store.isOnline(device.companyId, device.userId), true);
    const [user] = await store.list(device.companyId);
    assert.deepEqual(user?.devices.map((listed) => listed.deviceId), [device.deviceId]);
    assert.deepEqual(await store.heartbeat([device], LONG_TTL_MS), [], "a second heartbeat finds the device live");
  });

  cases.withInstance("heartbeat of devices that are online reports nothing", async (store) => {
    const phone = freshDevice();
    const laptop = sibling(phone);
    await store.connect(phone, LONG_TTL_MS);
    // The laptop is unknown, but its user is online through the phone.
    assert.deepEqual(await store.heartbeat([phone, laptop], LONG_TTL_MS), []);
    assert.equal((await store.list(phone.companyId))[0]?.devices.length, 2);
    assert.equal(await store.disconnect(phone), null);
    assert.deepEqual(await store.disconnect(laptop), transitionOf(laptop, false));
  });

  cases.withInstance("heartbeat re-adding several devices reports each user once, in each company", async (store) => {
    const phone = freshDevice();
    const laptop = sibling(phone);
    const colleague = freshDevice({ companyId: phone.companyId });
    const elsewhere = freshDevice({ userId: phone.userId });
    const reported = await store.heartbeat([phone, laptop, colleague, elsewhere], LONG_TTL_MS);
    const key = (transition: { companyId: string; userId: string }) => `${transition.companyId}/${transition.userId}`;
    assert.deepEqual(
      [...reported].map(key).sort(),
      [phone, colleague, elsewhere].map((device) => key(transitionOf(device, true))).sort(),
    );
    assert.ok(reported.every((transition) => transition.online), "every transition is an online one");
    // Re-added devices are counted like connected ones: the last to leave reports.
    assert.equal(await store.disconnect(phone), null);
    assert.deepEqual(await store.disconnect(laptop), transitionOf(laptop, false));
  });

  // `heartbeat`: a device is its company, user and device ids together, as everywhere else.
  cases.withInstance("heartbeat of the same user and device ids in another company re-adds the device there, apart", async (store) => {
    const inAcme = freshDevice();
    const inBuildCo = freshDevice({ userId: inAcme.userId, deviceId: inAcme.deviceId });
    await store.connect(inAcme, LONG_TTL_MS);
    assert.deepEqual(await store.heartbeat([inBuildCo], LONG_TTL_MS), [transitionOf(inBuildCo, true)]);
    assert.equal(await store.isOnline(inBuildCo.companyId, inBuildCo.userId), true);
    assert.deepEqual(await store.deviceIds(inBuildCo.companyId, inBuildCo.userId), [inBuildCo.deviceId]);
    assert.deepEqual(await store.disconnect(inAcme), transitionOf(inAcme, false));
    assert.equal(await store.isOnline(inBuildCo.companyId, inBuildCo.userId), true, "the other company's device stays");
  });

  cases.withInstance("a user who disconnected is reported online again by a heartbeat that re-adds the device", async (store) => {
    const device = freshDevice();
    await store.connect(device, LONG_TTL_MS);
    await store.disconnect(device);
    assert.deepEqual(await store.heartbeat([device], LONG_TTL_MS), [transitionOf(device, true)]);
    assert.deepEqual(await store.connect(device, LONG_TTL_MS), null);
  });

  cases.withInstance("ping resolves when the store has one", async (store) => {
    assert.ok(store.ping === undefined || typeof store.ping === "function", "ping is optional but must be a method");
    await store.ping?.();
  });
}

function registerPresenceListingCases(cases: PresenceCases): void {
  cases.withInstance("list of a company with nobody online is empty", async (store) => {
    assert.deepEqual(await store.list(uniqueId("company")), []);
  });

  cases.withInstance("list orders users by id and details each device, oldest first", async (store) => {
    const companyId = uniqueId("company");
    const base = uniqueId("user");
    const ann = `${base}-a`;
    const bob = `${base}-b`;
    const cid = `${base}-c`;
    await store.connect({ companyId, userId: cid, deviceId: "tablet" }, LONG_TTL_MS);
    // Named so that id order and age order disagree: the listing must follow age.
    await store.connect({ companyId, userId: ann, deviceId: "zz-phone" }, LONG_TTL_MS);
    await sleep(15);
    await store.connect({ companyId, userId: ann, deviceId: "aa-laptop" }, LONG_TTL_MS);
    await store.connect({ companyId, userId: bob, deviceId: "phone" }, LONG_TTL_MS);

    const listed = await store.list(companyId);
    assert.deepEqual(listed.map((user) => user.userId), [ann, bob, cid]);
    assert.deepEqual(listed[0]?.devices.map((device) => device.deviceId), ["zz-phone", "aa-laptop"]);
    for (const device of listed.flatMap((user) => user.devices)) {
      assert.ok(isPlausibleTimestamp(device.connectedAt), `connectedAt ${device.connectedAt} is epoch ms`);
      assert.ok(device.lastSeen >= device.connectedAt, "lastSeen is never before connectedAt");
    }
    const [phone, laptop] = listed[0]?.devices ?? [];
    assert.ok(phone && laptop && phone.connectedAt < laptop.connectedAt, "the older device connected earlier");
  });

  cases.withInstance("heartbeat moves lastSeen forward and keeps connectedAt", async (store) => {
    const device = freshDevice();
    await store.connect(device, LONG_TTL_MS);
    const [before] = (await store.list(device.companyId))[0]?.devices ?? [];
    await sleep(25);
    assert.deepEqual(await store.heartbeat([device], LONG_TTL_MS), []);
    const [after] = (await store.list(device.companyId))[0]?.devices ?? [];
    assert.ok(before && after, "the device is listed before and after the heartbeat");
    assert.equal(after.connectedAt, before.connectedAt);
    assert.ok(after.lastSeen > before.lastSeen, `lastSeen ${after.lastSeen} moved past ${before.lastSeen}`);
  });

  cases.withInstance("companies are isolated, even for the same user id", async (store) => {
    const userId = uniqueId("user");
    const inAcme = freshDevice({ userId });
    const inBuildCo = freshDevice({ userId });
    const acmeColleague = freshDevice({ companyId: inAcme.companyId });

    await store.connect(inAcme, LONG_TTL_MS);
    await store.connect(acmeColleague, LONG_TTL_MS);
    assert.equal(await store.isOnline(inBuildCo.companyId, userId), false);
    assert.deepEqual(await store.list(inBuildCo.companyId), []);

    assert.deepEqual(await store.connect(inBuildCo, LONG_TTL_MS), transitionOf(inBuildCo, true));
    assert.deepEqual(
      (await store.list(inBuildCo.companyId)).map((user) => user.devices.map((device) => device.deviceId)),
      [[inBuildCo.deviceId]],
    );
    const acmeUsers = (await store.list(inAcme.companyId)).map((user) => user.userId);
    assert.deepEqual(acmeUsers, [userId, acmeColleague.userId].sort());

    assert.deepEqual(await store.disconnect(inAcme), transitionOf(inAcme, false));
    assert.equal(await store.isOnline(inBuildCo.companyId, userId), true);
  });
}
