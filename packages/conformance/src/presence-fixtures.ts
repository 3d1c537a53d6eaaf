import type { DeviceRef, PresenceStore, PresenceTransition } from "@truss/core";
import { uniqueId } from "./fixtures.js";
import type { CaseRegistrar } from "./registrar.js";

/** The registrar every presence case file uses. */
export type PresenceCases = CaseRegistrar<PresenceStore, void>;

/** A TTL long enough that nothing expires during a case that does not wait for expiry. */
export const LONG_TTL_MS = 60_000;

/** A device of a fresh user in a fresh company. */
export function freshDevice(overrides: Partial<DeviceRef> = {}): DeviceRef {
  return {
    companyId: uniqueId("company"),
    userId: uniqueId("user"),
    deviceId: uniqueId("device"),
    ...overrides,
  };
}

/** Another device of the same user. */
export function sibling(device: DeviceRef): DeviceRef {
  return { ...device, deviceId: uniqueId("device") };
}

/** The transition a store must report for `device`'s user. */
export function transitionOf(device: DeviceRef, online: boolean): PresenceTransition {
  return { companyId: device.companyId, userId: device.userId, online };
}

/**
 * The transitions that concern this case's company: a shared backend's sweep
 * also returns other cases' and other runs' users.
 */
export function transitionsIn(
  companyId: string,
  transitions: readonly (PresenceTransition | null)[],
): PresenceTransition[] {
  return transitions.filter(
    (transition): transition is PresenceTransition => transition !== null && transition.companyId === companyId,
  );
}
