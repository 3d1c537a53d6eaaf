import type { PresenceUser } from "@truss/protocol";
import { methodsOf } from "../kernel/contract.js";

export type { PresenceDevice, PresenceUser } from "@truss/protocol";

/** Identifies one device of one user in one company. */
export interface DeviceRef {
  /** The tenant. */
  companyId: string;
  /** The user. */
  userId: string;
  /** The device. */
  deviceId: string;
}

/** A user going online or offline, reported by the store so the engine can announce it. */
export interface PresenceTransition {
  /** The tenant the user belongs to. */
  companyId: string;
  /** The user whose state changed. */
  userId: string;
  /** `true`: the user's first device came online; `false`: the last one went. */
  online: boolean;
}

/**
 * Multi-device presence with time-to-live heartbeats. A device stays online
 * only while it is heartbeated within `ttlMs`, so when a node dies its users go
 * offline within the TTL. Implementations must be safe when many engine nodes
 * share one store: every transition is reported exactly once across them.
 */
export interface PresenceStore {
  /**
   * Marks a device online until `now + ttlMs`. Resolves with the transition
   * when this is the user's first live device, otherwise `null`.
   */
  connect(device: DeviceRef, ttlMs: number): Promise<PresenceTransition | null>;
  /**
   * Extends each listed device's expiry to `now + ttlMs`. A device the store
   * no longer holds (swept after its node stalled past the TTL, or lost with
   * the store's data) is re-added, and resolves with one online transition
   * for each user who thereby comes back: a user who had no device entry
   * left, so their offline transition was reported or their data is gone.
   * Each such user is reported once, across every handle on the store, and
   * once however many of their devices are re-added. A lapsed device that
   * was not swept yet is revived as it was, with no transition, since no
   * offline transition was reported for it. Resolves `[]` when nobody came
   * back.
   */
  heartbeat(devices: readonly DeviceRef[], ttlMs: number): Promise<PresenceTransition[]>;
  /**
   * Marks a device offline. Resolves with the transition when it was the
   * user's last live device, otherwise `null` (also when it was not online).
   */
  disconnect(device: DeviceRef): Promise<PresenceTransition | null>;
  /**
   * Removes every device whose expiry has passed and resolves with the users
   * who thereby went offline. Each transition is returned to one caller only.
   */
  sweepExpired(): Promise<PresenceTransition[]>;
  /** Whether the user has at least one live (unexpired) device. */
  isOnline(companyId: string, userId: string): Promise<boolean>;
  /** The ids of the user's live (unexpired) devices, in any order; `[]` when offline. */
  deviceIds(companyId: string, userId: string): Promise<string[]>;
  /** Every user of the company with at least one live device, ordered by user id. */
  list(companyId: string): Promise<PresenceUser[]>;
  /** Rejects when the store cannot be reached; used by `engine.health()`. Optional. */
  ping?(): Promise<void>;
}

/** The methods every {@link PresenceStore} must have; `createRealtimeEngine` refuses a store without one of them. */
export const PRESENCE_STORE_METHODS = methodsOf<PresenceStore>({ connect: true, heartbeat: true, disconnect: true, sweepExpired: true, isOnline: true, deviceIds: true, list: true });
