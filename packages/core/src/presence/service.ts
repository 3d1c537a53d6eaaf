import type { Principal } from "../kernel/principal.js";
import type { DeviceRef, PresenceTransition, PresenceUser } from "./store.js";
import { PROTOCOL_EVENTS, type PresenceUpdate, type PresenceUpdates } from "@truss/protocol";
import { deviceKey, type Connection } from "../kernel/connection.js";
import { ADAPTER_RESUBSCRIBED_EVENT, type EngineContext } from "../kernel/context.js";
import { catchUpEach } from "../kernel/catch-up.js";
import { StoreCallOrder } from "../kernel/deadlines.js";
import { BestEffortStore, storeCall } from "../kernel/failures.js";
import { Groups } from "../kernel/groups.js";
import type { PresenceStore } from "./store.js";
import { companyPresenceRoom, userKeyOf } from "../kernel/rooms.js";
import { messageOf, TrussError } from "../kernel/errors.js";

/**
 * The heartbeat and sweep intervals that follow from a presence TTL when
 * they are not set: a heartbeat every third of the TTL, a sweep every half,
 * never more often than every 100 ms.
 */
export function presenceIntervals(ttlMs: number): { heartbeatIntervalMs: number; sweepIntervalMs: number } {
  return { heartbeatIntervalMs: Math.max(100, Math.floor(ttlMs / 3)), sweepIntervalMs: Math.max(100, Math.floor(ttlMs / 2)) };
}

/** Presence timing, the `presenceTiming` option. */
export interface PresenceTimingOptions {
  /** How long a device stays online without a heartbeat, in ms. Default 30 s. */
  ttlMs?: number;
  /** How often this node heartbeats its devices, in ms. Default a third of the TTL. */
  heartbeatIntervalMs?: number;
  /** How often this node sweeps expired devices (other nodes' crashed users). Default half the TTL. */
  sweepIntervalMs?: number;
}

interface LocalDevice {
  ref: DeviceRef;
  /** {@link deviceKey} of `ref`. */
  key: string;
  sockets: number;
  /** Store calls for one device run in order, so a quick reconnect cannot overtake its own disconnect. */
  queue: Promise<unknown>;
}

/** How long presence changes of one company are collected after one went out. */
const PRESENCE_WINDOW_MS = 1000;

/** The queue of a device whose store calls have all settled: one promise for them all, not one kept per device. */
const SETTLED: Promise<unknown> = Promise.resolve();

/**
 * Keeps this node's devices in the presence store: connect and disconnect per
 * device (several sockets of one device count once), periodic heartbeats, and
 * a sweep that announces users of crashed nodes going offline.
 */
export class PresenceService {
  private readonly devices = new Map<string, LocalDevice>();
  /** User (company and id) → ids of their devices with a socket here, for the device cap. */
  private readonly deviceIdsByUser = new Groups<string, string>();
  /** Companies with an announcement in the current window: the changes queued since, and the window's timer. */
  private readonly windows = new Map<string, { queued: PresenceUpdate[]; timer: NodeJS.Timeout }>();
  /** Disconnects still running for devices that left; a reconnect of the same device waits for them. */
  private readonly leaving = new Map<string, Promise<unknown>>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  /** After `stop()` changes go out one by one: no window timer may outlive the engine. */
  private stopped = false;
  private sweepTimer: NodeJS.Timeout | undefined;
  private inFlightHeartbeat: Promise<void> | undefined;

  /** Presence is best effort while its store is down: connections carry on, the outage is logged once. */
  private readonly stores: BestEffortStore;
  /** A device's connect that lands past its deadline still lands before the device's disconnect, by device key. */
  private readonly order: StoreCallOrder;

  constructor(
    private readonly ctx: EngineContext,
    private readonly store: PresenceStore,
    private readonly timing: Required<PresenceTimingOptions>,
  ) {
    this.stores = new BestEffortStore(ctx, "presence", "presence");
    this.order = new StoreCallOrder(ctx.storeDeadlines, "presence", timing.ttlMs);
  }

  /** Starts heartbeats and sweeps, and the resync after the adapter resubscribes; timers never keep the process alive. */
  start(): void {
    this.ctx.namespace().adapter.on(ADAPTER_RESUBSCRIBED_EVENT, () => void this.resync());
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.timing.heartbeatIntervalMs).unref();
    this.sweepTimer = setInterval(() => void this.sweep(), this.timing.sweepIntervalMs).unref();
  }

  /**
   * After the adapter's subscriber was cut off, the changes other nodes
   * announced meanwhile never reached this node's followers: each company
   * they follow is listed again and sent to them as a `presence:updates`
   * with `resync: true`, every user online now, so a client drops the users
   * it holds who are not among them. Nothing is kept per follower for it.
   */
  private async resync(): Promise<void> {
    const namespace = this.ctx.namespace();
    const followed = new Set<string>();
    for (const socket of namespace.sockets.values()) {
      const companyId = (socket.data.principal as Principal | undefined)?.companyId;
      if (companyId !== undefined && socket.rooms.has(companyPresenceRoom(companyId))) followed.add(companyId);
    }
    const stillFollowed = (companyId: string) => (namespace.adapter.rooms.get(companyPresenceRoom(companyId))?.size ?? 0) > 0;
    await catchUpEach([...followed], (companyId, final) => this.resyncCompany(companyId, final), stillFollowed);
  }

  private async resyncCompany(companyId: string, final: boolean): Promise<boolean> {
    let users: PresenceUser[];
    try {
      users = await this.list(companyId);
    } catch (error) {
      if (final) this.ctx.logger.warn("presence could not be listed again after the adapter resubscribed", { companyId, error: messageOf(error) });
      return false;
    }
    const resync: PresenceUpdates = { updates: users.map(({ userId }) => ({ userId, online: true })), resync: true };
    this.ctx.namespace().local.to(companyPresenceRoom(companyId)).emit(PROTOCOL_EVENTS.presenceUpdates, resync);
    return true;
  }

  /** Stops the timers. */
  stop(): void {
    clearInterval(this.heartbeatTimer);
    clearInterval(this.sweepTimer);
    this.order.stop();
    this.stopped = true;
    for (const companyId of [...this.windows.keys()]) {
      clearTimeout(this.windows.get(companyId)!.timer);
      this.flushWindow(companyId);
    }
  }

  /** Records a socket of the connection's device; announces the user if this is their first device anywhere. */
  open({ principal, deviceKey: key, userKey }: Connection): Promise<void> {
    let device = this.devices.get(key);
    if (!device) {
      const ref = { companyId: principal.companyId, userId: principal.userId, deviceId: principal.deviceId };
      device = { ref, key, sockets: 0, queue: this.leaving.get(key) ?? SETTLED };
      this.devices.set(key, device);
      this.deviceIdsByUser.add(userKey, principal.deviceId);
    }
    device.sockets += 1;
    if (device.sockets > 1) return device.queue.then(() => undefined);
    const ref = device.ref;
    return this.enqueue(device, "connect", () => this.store.connect(ref, this.timing.ttlMs));
  }

  /** Releases a socket; when the device has no socket left here, takes it offline. */
  close({ principal, deviceKey: key, userKey }: Connection): Promise<void> {
    const device = this.devices.get(key);
    if (!device) return Promise.resolve();
    device.sockets -= 1;
    if (device.sockets > 0) return Promise.resolve();
    this.devices.delete(key);
    this.deviceIdsByUser.delete(userKey, principal.deviceId);
    const ref = device.ref;
    // A heartbeat already on its way still names this device; were the
    // disconnect to overtake it, the heartbeat would re-add the device and
    // announce its user online again.
    const heartbeat = this.inFlightHeartbeat;
    const done = this.enqueue(device, "disconnect", async () => {
      await heartbeat;
      return this.store.disconnect(ref);
    });
    this.leaving.set(key, done);
    void done.finally(() => {
      if (this.leaving.get(key) === done) this.leaving.delete(key);
    });
    return done;
  }

  /**
   * Whether a device of `principal` may connect under a cap of `max` devices
   * per user: yes when that device is online already, or when the user's
   * devices (in the store, and those connecting here) are fewer than `max`.
   * While the store is down the cap is not enforced (presence is best effort).
   */
  async admitsDevice(principal: Principal, max: number): Promise<boolean> {
    const stored = await this.stores.call("deviceIds", () => this.store.deviceIds(principal.companyId, principal.userId));
    const ids = new Set(stored ?? []);
    this.deviceIdsByUser.forEach(userKeyOf(principal), (id) => ids.add(id));
    return ids.has(principal.deviceId) || ids.size < max;
  }

  /**
   * The same cap over this node's devices alone, checked synchronously as a
   * socket connects: handshakes that passed {@link admitsDevice} together,
   * before any of them was registered, cannot all get in.
   */
  admitsDeviceLocally(principal: Principal, max: number): boolean {
    const key = userKeyOf(principal);
    return this.deviceIdsByUser.sizeOf(key) < max || this.deviceIdsByUser.has(key, principal.deviceId);
  }

  /**
   * Whether one more socket of `principal`'s device may connect under a cap of
   * `max` sockets per device. Counted on this node only: the presence store
   * counts devices, not their sockets, and what the cap protects is this
   * node's memory. Synchronous, so handshakes that arrive together are
   * counted one by one as they connect.
   */
  admitsSocket(principal: Principal, max: number): boolean {
    return (this.devices.get(deviceKey(principal))?.sockets ?? 0) < max;
  }

  /**
   * Answers `presence:list`: the company's online users, and with `follow`
   * starts (`true`) or stops (`false`) sending this socket the company's
   * `presence:update(s)`. It follows before the list is read, so no change
   * between the two is missed.
   */
  async listFor(connection: Connection, payload: unknown): Promise<{ users: PresenceUser[] }> {
    const follow = (payload as { follow?: unknown } | null | undefined)?.follow;
    if (follow !== undefined && typeof follow !== "boolean") throw new TrussError("INVALID_PAYLOAD", "presence:list takes { follow?: boolean }.");
    const room = companyPresenceRoom(connection.principal.companyId);
    if (follow === true) connection.socket.join(room);
    else if (follow === false) connection.socket.leave(room);
    return { users: await this.list(connection.principal.companyId) };
  }

  /** Every online user of a company with their devices. */
  list(companyId: string): Promise<PresenceUser[]> {
    return storeCall(this.ctx, "presence", "list", () => this.store.list(companyId));
  }

  /** Whether a user of a company is online on any node. */
  isOnline(companyId: string, userId: string): Promise<boolean> {
    return storeCall(this.ctx, "presence", "isOnline", () => this.store.isOnline(companyId, userId));
  }

  /**
   * Extends every local device's TTL, and announces users it brings back:
   * after an outage or a stall past the TTL another node may have swept them
   * offline (or Redis lost them), and the store re-adds them.
   */
  heartbeat(): Promise<void> {
    if (this.devices.size === 0) return Promise.resolve();
    const refs = [...this.devices.values()].map((device) => device.ref);
    const beat = this.stores
      .call("heartbeat", () => this.store.heartbeat(refs, this.timing.ttlMs))
      .then((transitions) => this.stores.forEachAnswer("heartbeat", transitions, this.announce));
    this.inFlightHeartbeat = beat;
    void beat.finally(() => {
      if (this.inFlightHeartbeat === beat) this.inFlightHeartbeat = undefined;
    });
    return beat;
  }

  /** Announces users whose devices expired (their node stopped heartbeating). */
  async sweep(): Promise<void> {
    const transitions = await this.stores.call("sweepExpired", () => this.store.sweepExpired());
    this.stores.forEachAnswer("sweepExpired", transitions, this.announce);
  }

  private enqueue(device: LocalDevice, operation: "connect" | "disconnect", call: () => Promise<PresenceTransition | null>): Promise<void> {
    const previous = device.queue;
    // An async function awaiting the queue, not `queue.then(async () => ...)`: a promise handed back from a
    // `then` callback costs two more turns and a promise before `next` settles, at every connection.
    const run = async (): Promise<void> => {
      await previous;
      // Never rejects (stores.call settles failures, forEachAnswer logs bad answers), so the device's next change still runs.
      // A transition the store makes past the deadline is announced when it comes: the user did go online (or offline).
      const transition = await this.stores.call(operation, () => this.order.after(device.key, call), this.announceLate);
      if (transition) this.stores.forEachAnswer(operation, [transition], this.announce);
      if (device.queue === next) device.queue = SETTLED;
    };
    const next = run();
    device.queue = next;
    return next;
  }

  /**
   * The first change in a company goes out at once; the changes of the next
   * PRESENCE_WINDOW_MS go out together when it ends, in one packet to the
   * company's presence followers. A reconnect storm then costs each member one message per
   * window instead of one per user that comes back. A bound field, so store
   * answers are announced through it without a closure per call.
   */
  private readonly announce = (transition: PresenceTransition): void => {
    const update: PresenceUpdate = { userId: transition.userId, online: transition.online };
    const window = this.windows.get(transition.companyId);
    if (window) {
      window.queued.push(update);
      return;
    }
    this.ctx.namespace().to(companyPresenceRoom(transition.companyId)).emit(PROTOCOL_EVENTS.presenceUpdate, update);
    if (!this.stopped) this.openWindow(transition.companyId);
  };

  /** Announces a transition the store answered after its deadline. A bound field, as `announce` is. */
  private readonly announceLate = (transition: PresenceTransition | null): void => {
    if (transition) this.stores.forEachAnswer("late transition", [transition], this.announce);
  };

  private openWindow(companyId: string): void {
    const timer = setTimeout(() => this.flushWindow(companyId), PRESENCE_WINDOW_MS).unref();
    this.windows.set(companyId, { queued: [], timer });
  }

  private flushWindow(companyId: string): void {
    const queued = this.windows.get(companyId)?.queued ?? [];
    this.windows.delete(companyId);
    if (queued.length === 0) return;
    const batch: PresenceUpdates = { updates: queued };
    this.ctx.namespace().to(companyPresenceRoom(companyId)).emit(PROTOCOL_EVENTS.presenceUpdates, batch);
    // Keep collecting while the burst lasts.
    if (!this.stopped) this.openWindow(companyId);
  }
}
