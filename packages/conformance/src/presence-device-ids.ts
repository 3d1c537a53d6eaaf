import assert from "node:assert/strict";
import { uniqueId } from "./fixtures.js";
import { freshDevice, LONG_TTL_MS, type PresenceCases, sibling } from "./presence-fixtures.js";

/** Ids in any order, compared as a set. */
const sorted = (ids: readonly string[]) => [...ids].sort();

/** Cases for `deviceIds`: which of a user's devices are live. Expiry is covered with the TTL cases. */
export function registerPresenceDeviceIdCases(cases: PresenceCases): void {
  cases.withInstance("deviceIds lists the user's live devices, and nothing once they are gone", async (store) => {
    const phone = freshDevice();
    const laptop = sibling(phone);
    assert.deepEqual(await store.deviceIds(phone.companyId, phone.userId), []);
    await store.connect(phone, LONG_TTL_MS);
    await store.connect(laptop, LONG_TTL_MS);
    assert.deepEqual(sorted(await store.deviceIds(phone.companyId, phone.userId)), sorted([phone.deviceId, laptop.deviceId]));
    await store.disconnect(phone);
    assert.deepEqual(await store.deviceIds(phone.companyId, phone.userId), [laptop.deviceId]);
    await store.disconnect(laptop);
    assert.deepEqual(await store.deviceIds(phone.companyId, phone.userId), []);
  });

  cases.withInstance("deviceIds lists devices a heartbeat re-added", async (store) => {
    const device = freshDevice();
    await store.heartbeat([device], LONG_TTL_MS);
    assert.deepEqual(await store.deviceIds(device.companyId, device.userId), [device.deviceId]);
  });

  cases.withInstance("deviceIds is per company, even for the same user and device ids", async (store) => {
    const inAcme = freshDevice();
    const inBuildCo = freshDevice({ userId: inAcme.userId, deviceId: inAcme.deviceId });
    const acmeColleague = freshDevice({ companyId: inAcme.companyId });
    await store.connect(inAcme, LONG_TTL_MS);
    await store.connect(acmeColleague, LONG_TTL_MS);
    assert.deepEqual(await store.deviceIds(inBuildCo.companyId, inBuildCo.userId), []);
    await store.connect(inBuildCo, LONG_TTL_MS);
    await store.disconnect(inAcme);
    assert.deepEqual(await store.deviceIds(inAcme.companyId, inAcme.userId), []);
    assert.deepEqual(await store.deviceIds(inBuildCo.companyId, inBuildCo.userId), [inBuildCo.deviceId]);
  });

  cases.withInstance("deviceIds returns device ids as they were given, whatever characters they contain", async (store) => {
    const companyId = `${uniqueId("company")}:{a}%2F/`;
    const userId = `${uniqueId("user")}:{b}%3A`;
    const deviceIds = ["a:b", "{c}", "%3A", "d/e", "f g", "é🏗", "__proto__", "constructor"];
    for (const deviceId of deviceIds) await store.connect({ companyId, userId, deviceId }, LONG_TTL_MS);
    assert.deepEqual(sorted(await store.deviceIds(companyId, userId)), sorted(deviceIds));
    assert.deepEqual(await store.deviceIds(companyId, `${userId}:a`), []);
  });
}
