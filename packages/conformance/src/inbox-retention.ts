import assert from "node:assert/strict";
import type { InboxDropStats, InboxStore } from "@truss/core";
import { sleep } from "./fixtures.js";
import { appendSequence, assertStrictlyIncreasing, deviceOf, freshUser, type InboxCases } from "./inbox-fixtures.js";

const TTL_CASE_TIMEOUT_MS = 15_000;

/**
 * Cases for what the TTL and the length cap drop: the oldest messages go
 * first and every drop is counted. Counts are compared before and after, since
 * a shared backend's totals include other cases' drops.
 */
export function registerInboxRetentionCases(cases: InboxCases): void {
  cases.withInstance(
    "messages past the TTL are dropped and counted",
    async (inbox) => {
      const user = freshUser();
      const before = await inbox.dropped();
      await appendSequence(inbox, user, 3);
      await sleep(450);
      assert.deepEqual(await inbox.read(user, null, 10), [], "expired messages are never read");
      const fresh = (await inbox.append(user, "expense:approved", { index: 3 })).message;
      assert.deepEqual(await inbox.read(user, null, 10), [fresh]);
      assert.deepEqual(dropsSince(before, await inbox.dropped()), { expired: 3, overCap: 0 });
    },
    { factoryOptions: { ttlMs: 200 }, timeoutMs: TTL_CASE_TIMEOUT_MS },
  );

  cases.withInstance(
    "a cursor past the TTL, kept or forgotten, reads every kept message and none it acknowledged",
    async (inbox) => {
      const user = freshUser();
      const phone = deviceOf(user, "phone");
      const [first] = await appendSequence(inbox, user, 1);
      await inbox.ack(phone, first!.id);
      await sleep(300);
      const kept = (await inbox.append(user, "expense:approved", { index: 1 })).message;
      // A store may forget a cursor once every message up to it expired: without it the device reads the same.
      const cursor = await inbox.cursor(phone);
      assert.ok(cursor === null || cursor === first!.id, `the cursor is ${first!.id} or forgotten, got ${cursor}`);
      assert.deepEqual(await inbox.read(user, cursor, 10), [kept]);
    },
    { factoryOptions: { ttlMs: 200 }, timeoutMs: TTL_CASE_TIMEOUT_MS },
  );

  cases.withInstance(
    "messages younger than the TTL are kept",
    async (inbox) => {
      const user = freshUser();
      await inbox.append(user, "expense:approved", { index: 0 });
      await sleep(300);
      const younger = (await inbox.append(user, "expense:approved", { index: 1 })).message;
      await sleep(300);
      assert.deepEqual(await inbox.read(user, null, 10), [younger]);
    },
    { factoryOptions: { ttlMs: 500 }, timeoutMs: TTL_CASE_TIMEOUT_MS },
  );

  cases.withInstance(
    "over the length cap the oldest messages go first and are counted",
    async (inbox) => {
      const user = freshUser();
      const before = await inbox.dropped();
      const appended = await appendSequence(inbox, user, 8);
      assert.deepEqual(await inbox.read(user, null, 100), appended.slice(3));
      assert.deepEqual(dropsSince(before, await inbox.dropped()), { expired: 0, overCap: 3 });

      const next = (await inbox.append(user, "expense:approved", { index: 8 })).message;
      assertStrictlyIncreasing([...appended, next].map((message) => message.id));
      // A device may acknowledge a message the cap dropped after it was delivered.
      const phone = deviceOf(user, "phone");
      await inbox.ack(phone, appended[0]!.id);
      assert.equal(await inbox.cursor(phone), appended[0]!.id);
    },
    { factoryOptions: { maxLength: 5 } },
  );

  cases.withInstance("dropped() reports whole counts", async (inbox: InboxStore) => {
    const { expired, overCap } = await inbox.dropped();
    assert.ok(Number.isInteger(expired) && expired >= 0, `expired ${expired} is a count`);
    assert.ok(Number.isInteger(overCap) && overCap >= 0, `overCap ${overCap} is a count`);
  });
}

function dropsSince(before: InboxDropStats, after: InboxDropStats): InboxDropStats {
  return { expired: after.expired - before.expired, overCap: after.overCap - before.overCap };
}
