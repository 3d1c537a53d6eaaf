import type {
  DeviceRef,
  PresenceDevice,
  PresenceStore,
  PresenceTransition,
  PresenceUser,
} from "./store.js";
import { markInProcess } from "../kernel/in-process.js";

interface DeviceEntry {
  connectedAt: number;
  lastSeen: number;
  expiresAt: number;
}

/**
 * A user's devices: deviceId → entry, in the order the devices came online.
 * Most users have one device, so one is held in place and a Map is made only
 * for a second: at tens of thousands of connections a Map per user costs
 * more than its entry.
 */
class UserDevices {
  private id: string | undefined;
  private entry: DeviceEntry | undefined;
  private many: Map<string, DeviceEntry> | undefined;

  get size(): number {
    return this.many ? this.many.size : this.id === undefined ? 0 : 1;
  }

  get(deviceId: string): DeviceEntry | undefined {
    return this.many ? this.many.get(deviceId) : this.id === deviceId ? this.entry : undefined;
  }

  set(deviceId: string, entry: DeviceEntry): void {
    if (this.many) this.many.set(deviceId, entry);
    else if (this.id === undefined || this.id === deviceId) [this.id, this.entry] = [deviceId, entry];
    else {
      this.many = new Map([[this.id, this.entry!], [deviceId, entry]]);
      [this.id, this.entry] = [undefined, undefined];
    }
  }

  delete(deviceId: string): void {
    if (this.many) this.many.delete(deviceId);
    else if (this.id === deviceId) [this.id, this.entry] = [undefined, undefined];
  }

  clear(): void {
    [this.id, this.entry, this.many] = [undefined, undefined, undefined];
  }

  values(): IterableIterator<DeviceEntry> | DeviceEntry[] {
    return this.many ? this.many.values() : this.entry ? [this.entry] : [];
  }

  /** Entries as [deviceId, entry]; a copy, so deleting while iterating is safe. */
  [Symbol.iterator](): IterableIterator<[string, DeviceEntry]> {
    const list: Array<[string, DeviceEntry]> = this.many ? [...this.many] : this.id === undefined ? [] : [[this.id, this.entry!]];
    return list[Symbol.iterator]();
  }
}

/**
 * The in-memory presence store, the engine's default for a single node.
 *
 * Expiry is lazy: nothing runs on a timer (so the store never keeps a process
 * alive), reads simply ignore devices whose TTL has passed, and
 * `sweepExpired()` (which the engine calls periodically) removes them and
 * reports the users who thereby went offline.
 *
 * A user's offline transition is reported by exactly one of `disconnect` or
 * `sweepExpired`, never both: a device that expired before its disconnect is
 * left for the sweep, and a disconnect that takes the user offline also
 * forgets the user's expired devices. A heartbeat that re-adds a device of a
 * user with no device left (one already reported offline) reports them online.
 *
 * @param options.now Clock in epoch ms, for tests; defaults to `Date.now`.
 */
export function memoryPresenceStore(options: { now?: () => number } = {}): PresenceStore {
  const now = options.now ?? Date.now;
  const companies = new Map<string, Map<string, UserDevices>>();

  const isLive = (entry: DeviceEntry, at: number) => entry.expiresAt > at;
  const hasLiveDevice = (devices: UserDevices, at: number) => {
    for (const entry of devices.values()) if (isLive(entry, at)) return true;
    return false;
  };

  const userDevices = (companyId: string, userId: string) => companies.get(companyId)?.get(userId);

  const userDevicesForWrite = (companyId: string, userId: string): UserDevices => {
    let users = companies.get(companyId);
    if (!users) {
      users = new Map();
      companies.set(companyId, users);
    }
    let devices = users.get(userId);
    if (!devices) {
      devices = new UserDevices();
      users.set(userId, devices);
    }
    return devices;
  };

  const forgetUser = (companyId: string, userId: string) => {
    const users = companies.get(companyId);
    users?.delete(userId);
    if (users?.size === 0) companies.delete(companyId);
  };

  return markInProcess({
    async connect(device, ttlMs) {
      const at = now();
      const devices = userDevicesForWrite(device.companyId, device.userId);
      const wasOnline = hasLiveDevice(devices, at);
      const existing = devices.get(device.deviceId);
      if (existing && isLive(existing, at)) {
        existing.lastSeen = at;
        existing.expiresAt = at + ttlMs;
        return null;
      }
      if (!wasOnline) {
        // The user is coming online afresh, so devices that lapsed unswept
        // belong to the previous session; a later sweep must not report them.
        devices.clear();
      } else {
        devices.delete(device.deviceId);
      }
      devices.set(device.deviceId, { connectedAt: at, lastSeen: at, expiresAt: at + ttlMs });
      return wasOnline ? null : transition(device, true);
    },

    async heartbeat(refs, ttlMs) {
      const at = now();
      const transitions: PresenceTransition[] = [];
      for (const ref of refs) {
        const devices = userDevicesForWrite(ref.companyId, ref.userId);
        // No entry at all: the user's offline transition was reported (or
        // never happened here), so the first re-added device brings them back.
        if (devices.size === 0) transitions.push(transition(ref, true));
        const existing = devices.get(ref.deviceId);
        if (existing) {
          // A lapsed but unswept device is revived as it was: no offline
          // transition was reported for it, so none of its history is lost.
          existing.lastSeen = at;
          existing.expiresAt = at + ttlMs;
        } else {
          devices.set(ref.deviceId, { connectedAt: at, lastSeen: at, expiresAt: at + ttlMs });
        }
      }
      return transitions;
    },

    async disconnect(device) {
      const at = now();
      const devices = userDevices(device.companyId, device.userId);
      const entry = devices?.get(device.deviceId);
      if (!devices || !entry || !isLive(entry, at)) return null;
      devices.delete(device.deviceId);
      if (hasLiveDevice(devices, at)) return null;
      forgetUser(device.companyId, device.userId);
      return transition(device, false);
    },

    async sweepExpired() {
      const at = now();
      const transitions: PresenceTransition[] = [];
      for (const [companyId, users] of companies) {
        for (const [userId, devices] of users) {
          let removed = 0;
          for (const [deviceId, entry] of devices) {
            if (isLive(entry, at)) continue;
            devices.delete(deviceId);
            removed += 1;
          }
          if (removed > 0 && devices.size === 0) {
            users.delete(userId);
            transitions.push({ companyId, userId, online: false });
          }
        }
        if (users.size === 0) companies.delete(companyId);
      }
      return transitions;
    },

    async isOnline(companyId, userId) {
      const devices = userDevices(companyId, userId);
      return devices !== undefined && hasLiveDevice(devices, now());
    },

    async deviceIds(companyId, userId) {
      const at = now();
      const ids: string[] = [];
      for (const [deviceId, entry] of userDevices(companyId, userId) ?? []) if (isLive(entry, at)) ids.push(deviceId);
      return ids;
    },

    async list(companyId) {
      const at = now();
      const users = companies.get(companyId);
      if (!users) return [];
      const listed: PresenceUser[] = [];
      for (const [userId, devices] of users) {
        const live: PresenceDevice[] = [];
        for (const [deviceId, entry] of devices) {
          if (isLive(entry, at)) {
            live.push({ deviceId, connectedAt: entry.connectedAt, lastSeen: entry.lastSeen });
          }
        }
        if (live.length === 0) continue;
        // Stable sort: devices connected in the same ms keep their arrival order.
        live.sort((a, b) => a.connectedAt - b.connectedAt);
        listed.push({ userId, devices: live });
      }
      // Code-unit order, as a Redis sorted set would give, not locale order.
      return listed.sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
    },
  });
}

function transition(device: DeviceRef, isOnline: boolean): PresenceTransition {
  return { companyId: device.companyId, userId: device.userId, online: isOnline };
}
