import assert from "node:assert/strict";
import type { DeviceRef, InboxStore, UserKey } from "@truss/core";
import type { InboxMessage } from "@truss/protocol";
import { uniqueId } from "./fixtures.js";
import { appendSequence, deviceOf, freshUser, type InboxCases } from "./inbox-fixtures.js";

/** Characters a store might join or escape ids with; none may let two users or devices collide. */
const AWKWARD = [":", "{", "}", "%", "/", "|", ".", "#", " ", "é", "🏗"];

/**
 * Cases for what must never leak between inboxes: one company's messages or
 * cursors into another's, even for the same user and device ids, and one
 * user's into another's through how the store builds its keys.
 */
export function registerInboxIsolationCases(cases: InboxCases): void {
  cases.withInstance("users' inboxes are isolated", async (inbox) => {
    const ann = freshUser();
    const bob = freshUser({ companyId: ann.companyId });
    const forAnn = await appendSequence(inbox, ann, 2);
    const forBob = (await inbox.append(bob, "crew:changed", { crew: "north" })).message;
    assert.deepEqual(await inbox.read(ann, null, 10), forAnn);
    assert.deepEqual(await inbox.read(bob, null, 10), [forBob]);
  });

  cases.withInstance("cursors of different users are isolated", async (inbox) => {
    const ann = freshUser();
    const bob = freshUser({ companyId: ann.companyId });
    const [message] = await appendSequence(inbox, ann, 1);
    await inbox.ack(deviceOf(ann, "phone"), message!.id);
    assert.equal(await inbox.cursor(deviceOf(bob, "phone")), null);
  });

  cases.withInstance("the same user and device ids in two companies share no messages or cursors", async (inbox) => {
    const inAcme = freshUser();
    const inBuildCo = freshUser({ userId: inAcme.userId });
    const forAcme = await appendSequence(inbox, inAcme, 2);
    assert.deepEqual(await inbox.read(inBuildCo, null, 10), []);
    const forBuildCo = (await inbox.append(inBuildCo, "crew:changed", { crew: "north" })).message;
    assert.deepEqual(await inbox.read(inAcme, null, 10), forAcme);
    assert.deepEqual(await inbox.read(inBuildCo, null, 10), [forBuildCo]);
    await assertCursorsApart(inbox, deviceOf(inAcme, "phone"), deviceOf(inBuildCo, "phone"), [...forAcme, forBuildCo]);
  });

  cases.withInstance("no character in company, user or device ids makes two inboxes or cursors collide", async (inbox) => {
    for (const [first, second] of confusableDevices()) {
      const forFirst = (await inbox.append(userOf(first), "expense:approved", { to: first })).message;
      const forSecond = (await inbox.append(userOf(second), "expense:approved", { to: second })).message;
      const apart = `${JSON.stringify(first)} and ${JSON.stringify(second)} are apart`;
      assert.deepEqual(await inbox.read(userOf(first), null, 10), [forFirst], apart);
      assert.deepEqual(await inbox.read(userOf(second), null, 10), [forSecond], apart);
      await assertCursorsApart(inbox, first, second, [forFirst, forSecond]);
    }
  });
}

/**
 * Pairs of devices that a store building keys by joining ids, escaping them
 * halfway or keeping them in plain objects would confuse. Each pair has fresh
 * ids of its own, so runs sharing a backend never meet.
 */
function confusableDevices(): [DeviceRef, DeviceRef][] {
  const pairs: [DeviceRef, DeviceRef][] = [];
  for (const character of AWKWARD) {
    const tenant = uniqueId("tenant");
    pairs.push([
      { companyId: `${tenant}${character}b`, userId: "c", deviceId: "d" },
      { companyId: tenant, userId: `b${character}c`, deviceId: "d" },
    ]);
    const company = uniqueId("company");
    pairs.push([
      { companyId: company, userId: `c${character}d`, deviceId: "e" },
      { companyId: company, userId: "c", deviceId: `d${character}e` },
    ]);
  }
  const escaped = uniqueId("tenant");
  const composed = uniqueId("tenant");
  const prototypes = uniqueId("company");
  const user = uniqueId("user");
  pairs.push(
    // A store that escapes ":" as "%3A" but leaves "%" alone.
    [
      { companyId: `${escaped}%3Ab`, userId: "c", deviceId: "d" },
      { companyId: `${escaped}:b`, userId: "c", deviceId: "d" },
    ],
    // The same text, precomposed and decomposed: distinct ids, however a database collates them.
    [
      { companyId: `${composed}\u00e9`, userId: "c", deviceId: "d" },
      { companyId: `${composed}e\u0301`, userId: "c", deviceId: "d" },
    ],
    [
      { companyId: prototypes, userId: "__proto__", deviceId: "__proto__" },
      { companyId: prototypes, userId: "constructor", deviceId: "toString" },
    ],
    [
      { companyId: "__proto__", userId: user, deviceId: "phone" },
      { companyId: "constructor", userId: user, deviceId: "phone" },
    ],
  );
  return pairs;
}

function userOf(device: DeviceRef): UserKey {
  return { companyId: device.companyId, userId: device.userId };
}

/** Acknowledging on either device never moves or reveals the other's cursor. */
async function assertCursorsApart(
  inbox: InboxStore,
  first: DeviceRef,
  second: DeviceRef,
  appended: readonly InboxMessage[],
): Promise<void> {
  const apart = `${JSON.stringify(first)} and ${JSON.stringify(second)} have their own cursors`;
  const firstId = appended[0]!.id;
  await inbox.ack(first, firstId);
  assert.equal(await inbox.cursor(second), null, apart);
  // Newer than every appended id, so it cannot be mistaken for the first cursor.
  const newestMs = Math.max(...appended.map((message) => Number(message.id.split("-")[0])));
  const secondId = `${newestMs + 1}-0`;
  await inbox.ack(second, secondId);
  assert.equal(await inbox.cursor(first), firstId, apart);
  assert.equal(await inbox.cursor(second), secondId, apart);
}
