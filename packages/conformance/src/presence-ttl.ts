import assert from "node:assert/strict";
import { sleep } from "./fixtures.js";
import {
  freshDevice,
  LONG_TTL_MS,
  type PresenceCases,
  sibling,
  transitionOf,
  transitionsIn,
} from "./presence-fixtures.js";

/** Short enough to wait out in a test, long enough for a networked store's round trips. */
const SHORT_TTL_MS = 150;
/** Comfortably past {@link SHORT_TTL_MS}, so a slow machine does not make a case flaky. */
const PAST_SHORT_TTL_MS = 400;
const TTL_CASE_TIMEOUT_MS = 15_000;

/**
 * Cases that wait in real time for TTLs, so they hold for stores whose clock
 * the suite cannot fake (Redis key expiry, server-side time).
 */
export function registerPresenceTtlCases(cases: PresenceCases): void {
  cases.withInstance(
    "heartbeats keep a device online past its TTL",
    async (store) => {
      const ttlMs = 300;
      const device = freshDevice();
      await store.connect(device, ttlMs);
      // Five heartbeats a third of the TTL apart: 500 ms in all, well past the first TTL.
      for (let beat = 0; beat < 5; beat += 1) {
        await sleep(100);
        assert.deepEqual(await store.heartbeat([device], ttlMs), [], "a live device's heartbeat is no transition");
      }
      assert.equal(await store.isOnline(device.companyId, device.userId), true);
      assert.deepEqual(transitionsIn(device.companyId, await store.sweepExpired()), []);
      assert.equal((await store.list(device.companyId)).length, 1);
    },
    { timeoutMs: TTL_CASE_TIMEOUT_MS },
  );

  // `heartbeat`: "Extends each listed device's expiry to now + ttlMs", its own ttlMs, not the connect's.
  cases.withInstance(
    "a heartbeat keeps a device for its own ttlMs, longer than the connect's",
    async (store) => {
      const device = freshDevice();
      await store.connect(device, SHORT_TTL_MS);
      assert.deepEqual(await store.heartbeat([device], LONG_TTL_MS), []);
      await sleep(PAST_SHORT_TTL_MS);
      assert.equal(await store.isOnline(device.companyId, device.userId), true);
      assert.deepEqual(await store.deviceIds(device.companyId, device.userId), [device.deviceId]);
      assert.deepEqual(transitionsIn(device.companyId, await store.sweepExpired()), []);
    },
    { timeoutMs: TTL_CASE_TIMEOUT_MS },
  );

  cases.withInstance(
    "a device that is not heartbeated expires, and one sweep reports it",
    async (store) => {
      const device = freshDevice();
      await store.connect(device, SHORT_TTL_MS);
      await sleep(PAST_SHORT_TTL_MS);
      // Offline as soon as the TTL passes, whether or not anything swept yet.
      assert.equal(await store.isOnline(device.companyId, device.userId), false);
      assert.deepEqual(await store.list(device.companyId), []);
      assert.deepEqual(transitionsIn(device.companyId, await store.sweepExpired()), [transitionOf(device, false)]);
      assert.deepEqual(transitionsIn(device.companyId, await store.sweepExpired()), []);
    },
    { timeoutMs: TTL_CASE_TIMEOUT_MS },
  );

  cases.withInstance(
    "one of two devices expiring is no transition",
    async (store) => {
      const lapsed = freshDevice();
      const active = sibling(lapsed);
      await store.connect(lapsed, SHORT_TTL_MS);
      await store.connect(active, LONG_TTL_MS);
      await sleep(PAST_SHORT_TTL_MS);
      assert.equal(await store.isOnline(lapsed.companyId, lapsed.userId), true);
      const [user] = await store.list(lapsed.companyId);
      assert.deepEqual(user?.devices.map((device) => device.deviceId), [active.deviceId]);
      assert.deepEqual(transitionsIn(lapsed.companyId, await store.sweepExpired()), []);
      assert.deepEqual(await store.disconnect(active), transitionOf(active, false));
    },
    { timeoutMs: TTL_CASE_TIMEOUT_MS },
  );

  cases.withInstance(
    "deviceIds leaves out expired devices, before and after a sweep",
    async (store) => {
      const lapsed = freshDevice();
      const active = sibling(lapsed);
      const alone = freshDevice({ companyId: lapsed.companyId });
      await store.connect(lapsed, SHORT_TTL_MS);
      await store.connect(active, LONG_TTL_MS);
      await store.connect(alone, SHORT_TTL_MS);
      await sleep(PAST_SHORT_TTL_MS);
      assert.deepEqual(await store.deviceIds(lapsed.companyId, lapsed.userId), [active.deviceId]);
      assert.deepEqual(await store.deviceIds(alone.companyId, alone.userId), []);
      await store.sweepExpired();
      assert.deepEqual(await store.deviceIds(lapsed.companyId, lapsed.userId), [active.deviceId]);
      assert.deepEqual(await store.deviceIds(alone.companyId, alone.userId), []);
    },
    { timeoutMs: TTL_CASE_TIMEOUT_MS },
  );

  cases.withInstance(
    "an expired device's disconnect and a sweep report its user offline once between them",
    async (store) => {
      const device = freshDevice();
      await store.connect(device, SHORT_TTL_MS);
      await sleep(PAST_SHORT_TTL_MS);
      const reported = transitionsIn(device.companyId, [
        await store.disconnect(device),
        ...(await store.sweepExpired()),
        ...(await store.sweepExpired()),
      ]);
      assert.deepEqual(reported, [transitionOf(device, false)]);
    },
    { timeoutMs: TTL_CASE_TIMEOUT_MS },
  );

  cases.withInstance(
    "a user whose expiry was swept is reported online again on reconnect",
    async (store) => {
      const device = freshDevice();
      await store.connect(device, SHORT_TTL_MS);
      await sleep(PAST_SHORT_TTL_MS);
      await store.sweepExpired();
      assert.deepEqual(await store.connect(device, LONG_TTL_MS), transitionOf(device, true));
      assert.equal(await store.isOnline(device.companyId, device.userId), true);
    },
    { timeoutMs: TTL_CASE_TIMEOUT_MS },
  );

  cases.withInstance(
    "a device swept offline is reported online once by the heartbeat that re-adds it",
    async (store) => {
      // What a node sees after it stalled (or lost Redis) past the TTL while
      // another node swept its users offline: its next heartbeat brings them back.
      const device = freshDevice();
      await store.connect(device, SHORT_TTL_MS);
      await sleep(PAST_SHORT_TTL_MS);
      assert.deepEqual(transitionsIn(device.companyId, await store.sweepExpired()), [transitionOf(device, false)]);
      assert.deepEqual(await store.heartbeat([device], LONG_TTL_MS), [transitionOf(device, true)]);
      assert.deepEqual(await store.heartbeat([device], LONG_TTL_MS), []);
      assert.equal(await store.isOnline(device.companyId, device.userId), true);
      assert.deepEqual(transitionsIn(device.companyId, await store.sweepExpired()), []);
      assert.deepEqual(await store.disconnect(device), transitionOf(device, false));
    },
    { timeoutMs: TTL_CASE_TIMEOUT_MS },
  );

  cases.withInstance(
    "a heartbeat revives a lapsed device that was not swept yet without a transition",
    async (store) => {
      // No offline transition was reported for it, so none of the user's state changed.
      const device = freshDevice();
      await store.connect(device, SHORT_TTL_MS);
      await sleep(PAST_SHORT_TTL_MS);
      assert.deepEqual(await store.heartbeat([device], LONG_TTL_MS), []);
      assert.equal(await store.isOnline(device.companyId, device.userId), true);
      assert.deepEqual(transitionsIn(device.companyId, await store.sweepExpired()), []);
      assert.deepEqual(await store.disconnect(device), transitionOf(device, false));
    },
    { timeoutMs: TTL_CASE_TIMEOUT_MS },
  );
}
