import assert from "node:assert/strict";
import { compareInboxIds, type Inbox, type InboxMessage, type InboxOptions } from "@truss/core";
import type { CaseRegistrar } from "./registrar.js";

/** The registrar every inbox case file uses. */
export type InboxCases = CaseRegistrar<Inbox, InboxOptions>;

/** Appends `count` messages whose data is their index, one after another. */
export async function appendSequence(inbox: Inbox, userId: string, count: number): Promise<InboxMessage[]> {
  const appended: InboxMessage[] = [];
  for (let index = 0; index < count; index += 1) {
    appended.push(await inbox.append(userId, "expense:approved", { index }));
  }
  return appended;
}

/** Asserts that each id is newer than the one before it. */
export function assertStrictlyIncreasing(ids: readonly string[]): void {
  for (let index = 1; index < ids.length; index += 1) {
    assert.ok(compareInboxIds(ids[index - 1]!, ids[index]!) < 0, `${ids[index - 1]} is older than ${ids[index]}`);
  }
}
