import assert from "node:assert/strict";
import type { StreamEntry, StreamKey, StreamStore, StreamStoreOptions, StreamTrimStats } from "@truss/core";
import { uniqueId } from "./fixtures.js";
import type { CaseRegistrar } from "./registrar.js";

/** The registrar every stream case file uses. */
export type StreamCases = CaseRegistrar<StreamStore, StreamStoreOptions>;

/** A topic stream in a fresh company, so no two cases or runs share a stream. */
export function freshStream(overrides: Partial<StreamKey> = {}): StreamKey {
  return { companyId: uniqueId("company"), stream: `topic:${uniqueId("project")}`, ...overrides };
}

/** Appends `count` entries whose data is their index, one after another; all must share one epoch. */
export async function appendSequence(
  store: StreamStore,
  key: StreamKey,
  count: number,
): Promise<{ epoch: string; entries: StreamEntry[] }> {
  const entries: StreamEntry[] = [];
  let epoch: string | undefined;
  for (let index = 0; index < count; index += 1) {
    const appended = await store.append(key, "project:updated", { index });
    epoch ??= appended.epoch;
    assert.equal(appended.epoch, epoch, "the epoch stays the same across appends");
    entries.push(appended.entry);
  }
  return { epoch: epoch ?? "", entries };
}

/** The offsets of `entries`, for comparing by position. */
export function offsetsOf(entries: readonly StreamEntry[]): number[] {
  return entries.map((entry) => entry.offset);
}

/** The offsets `from` to `to`, inclusive. */
export function offsetRange(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, index) => from + index);
}

/** What was dropped between two `trimmed()` calls; a shared backend's totals include other cases'. */
export function trimsSince(before: StreamTrimStats, after: StreamTrimStats): StreamTrimStats {
  return { trimmed: after.trimmed - before.trimmed, expired: after.expired - before.expired };
}
