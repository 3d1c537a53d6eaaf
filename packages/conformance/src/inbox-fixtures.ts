import assert from "node:assert/strict";
import type { DeviceRef, InboxOptions, InboxStore, UserKey } from "@truss/core";
import { compareInboxIds, type InboxMessage } from "@truss/protocol";
import { uniqueId } from "./fixtures.js";
import type { CaseRegistrar } from "./registrar.js";

/** The registrar every inbox case file uses. */
export type InboxCases = CaseRegistrar<InboxStore, InboxOptions>;

/** A fresh user in a fresh company, so no two cases or runs share an inbox. */
export function freshUser(overrides: Partial<UserKey> = {}): UserKey {
  return { companyId: uniqueId("company"), userId: uniqueId("user"), ...overrides };
}

/** One of the user's devices. */
export function deviceOf(user: UserKey, deviceId: string): DeviceRef {
  return { companyId: user.companyId, userId: user.userId, deviceId };
}

/** Appends `count` messages whose data is their index, one after another. */
export async function appendSequence(inbox: InboxStore, user: UserKey, count: number): Promise<InboxMessage[]> {
  const appended: InboxMessage[] = [];
  for (let index = 0; index < count; index += 1) {
    appended.push((await inbox.append(user, "expense:approved", { index })).message);
  }
  return appended;
}

/** Asserts that each id is newer than the one before it. */
export function assertStrictlyIncreasing(ids: readonly string[]): void {
  for (let index = 1; index < ids.length; index += 1) {
    assert.ok(compareInboxIds(ids[index - 1]!, ids[index]!) < 0, `${ids[index - 1]} is older than ${ids[index]}`);
  }
}
