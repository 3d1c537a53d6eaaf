import assert from "node:assert/strict";
import type { DeviceRef } from "@truss/core";
import { sleep, uniqueId } from "./fixtures.js";
import { freshDevice, LONG_TTL_MS, type PresenceCases, transitionOf, transitionsIn } from "./presence-fixtures.js";

/** Each race is run this many times over, since a lost race is a matter of interleaving. */
const RACE_ROUNDS = 10;

/**
 * Cases for stores shared by several engine nodes: two handles race to report
 * the same transition, and exactly one of them may.
 */
export function registerPresenceSharedBackendCases(cases: PresenceCases): void {
  cases.withTwoHandles("a device connected on one node is seen and ended from the other", async (nodeA, nodeB) => {
    const device = freshDevice();
    await nodeA.connect(device, LONG_TTL_MS);
    assert.equal(await nodeB.isOnline(device.companyId, device.userId), true);
    assert.equal((await nodeB.list(device.companyId)).length, 1);
    assert.deepEqual(await nodeB.deviceIds(device.companyId, device.userId), [device.deviceId]);
    assert.deepEqual(await nodeB.disconnect(device), transitionOf(device, false));
    assert.deepEqual(await nodeA.deviceIds(device.companyId, device.userId), []);
    assert.equal(await nodeA.isOnline(device.companyId, device.userId), false);
  });

  cases.withTwoHandles("first devices racing on two nodes report one online transition", async (nodeA, nodeB) => {
    for (let round = 0; round < RACE_ROUNDS; round += 1) {
      const devices = devicesOfOneUser(6);
      const reported = await Promise.all(
        devices.map((device, index) => (index % 2 === 0 ? nodeA : nodeB).connect(device, LONG_TTL_MS)),
      );
      const first = devices[0]!;
      assert.deepEqual(transitionsIn(first.companyId, reported), [transitionOf(first, true)]);
      assert.equal((await nodeB.list(first.companyId))[0]?.devices.length, devices.length);
    }
  });

  cases.withTwoHandles("last devices racing on two nodes report one offline transition", async (nodeA, nodeB) => {
    for (let round = 0; round < RACE_ROUNDS; round += 1) {
      const [onA, onB] = devicesOfOneUser(2) as [DeviceRef, DeviceRef];
      await nodeA.connect(onA, LONG_TTL_MS);
      await nodeB.connect(onB, LONG_TTL_MS);
      const reported = await Promise.all([nodeA.disconnect(onA), nodeB.disconnect(onB)]);
      assert.deepEqual(transitionsIn(onA.companyId, reported), [transitionOf(onA, false)]);
      assert.equal(await nodeA.isOnline(onA.companyId, onA.userId), false);
    }
  });

  cases.withTwoHandles("one device disconnected on both nodes at once reports once", async (nodeA, nodeB) => {
    for (let round = 0; round < RACE_ROUNDS; round += 1) {
      const device = freshDevice();
      await nodeA.connect(device, LONG_TTL_MS);
      const reported = await Promise.all([nodeA.disconnect(device), nodeB.disconnect(device)]);
      assert.deepEqual(transitionsIn(device.companyId, reported), [transitionOf(device, false)]);
    }
  });

  cases.withTwoHandles(
    "sweeps racing on two nodes report each expiry once",
    async (nodeA, nodeB) => {
      const companyId = uniqueId("company");
      const devices = Array.from({ length: 8 }, () => freshDevice({ companyId }));
      await Promise.all(devices.map((device, index) => (index % 2 === 0 ? nodeA : nodeB).connect(device, 150)));
      await sleep(400);
      const [sweptByA, sweptByB] = await Promise.all([nodeA.sweepExpired(), nodeB.sweepExpired()]);
      const reported = transitionsIn(companyId, [...sweptByA, ...sweptByB]);
      const byUser = (a: { userId: string }, b: { userId: string }) => (a.userId < b.userId ? -1 : 1);
      assert.deepEqual(
        [...reported].sort(byUser),
        devices.map((device) => transitionOf(device, false)).sort(byUser),
      );
    },
    { timeoutMs: 15_000 },
  );

  cases.withTwoHandles("heartbeats re-adding one device on two nodes at once report it once", async (nodeA, nodeB) => {
    for (let round = 0; round < RACE_ROUNDS; round += 1) {
      const device = freshDevice();
      const [onA, onB] = await Promise.all([nodeA.heartbeat([device], LONG_TTL_MS), nodeB.heartbeat([device], LONG_TTL_MS)]);
      assert.deepEqual(transitionsIn(device.companyId, [...onA, ...onB]), [transitionOf(device, true)]);
    }
  });

  cases.withTwoHandles("a heartbeat racing a connect of the same user reports one online transition", async (nodeA, nodeB) => {
    for (let round = 0; round < RACE_ROUNDS; round += 1) {
      const [beating, connecting] = devicesOfOneUser(2) as [DeviceRef, DeviceRef];
      const [beat, connected] = await Promise.all([
        nodeA.heartbeat([beating], LONG_TTL_MS),
        nodeB.connect(connecting, LONG_TTL_MS),
      ]);
      assert.deepEqual(transitionsIn(beating.companyId, [...beat, connected]), [transitionOf(beating, true)]);
    }
  });

  cases.withTwoHandles(
    "devices swept offline and re-added by heartbeats on both nodes are reported online once each",
    async (nodeA, nodeB) => {
      const companyId = uniqueId("company");
      const devices = Array.from({ length: 6 }, () => freshDevice({ companyId }));
      await Promise.all(devices.map((device) => nodeA.connect(device, 150)));
      await sleep(400);
      // Node A stalled past the TTL; node B swept its users offline.
      assert.equal(transitionsIn(companyId, await nodeB.sweepExpired()).length, devices.length);
      // Node A heartbeats its devices again, and node B (say, holding the same
      // devices through a second socket each) does too, at the same moment.
      const [onA, onB] = await Promise.all([nodeA.heartbeat(devices, LONG_TTL_MS), nodeB.heartbeat(devices, LONG_TTL_MS)]);
      const byUser = (a: { userId: string }, b: { userId: string }) => (a.userId < b.userId ? -1 : 1);
      assert.deepEqual(
        transitionsIn(companyId, [...onA, ...onB]).sort(byUser),
        devices.map((device) => transitionOf(device, true)).sort(byUser),
      );
      assert.equal((await nodeA.list(companyId)).length, devices.length);
    },
    { timeoutMs: 15_000 },
  );
}

function devicesOfOneUser(count: number): DeviceRef[] {
  const first = freshDevice();
  return Array.from({ length: count }, (_, index) =>
    index === 0 ? first : { ...first, deviceId: uniqueId("device") },
  );
}
