import { removeOldest } from "../kernel/bounded-logs.js";
import {
  compareInboxIds,
  DEFAULT_INBOX_MAX_CURSORS_PER_USER,
  DEFAULT_INBOX_MAX_LENGTH,
  DEFAULT_INBOX_TTL_MS,
  INBOX_IDEMPOTENCY_KEYS_PER_MESSAGE,
  isInboxId,
  type InboxDropStats,
  type InboxMessage,
  type InboxOptions,
  type InboxStore,
  type UndeliveredClaim,
  type UserKey,
  undeliveredAfterMsOf,
} from "./store.js";
import { TrussError } from "../kernel/errors.js";
import { idempotencyKeyOf } from "../kernel/idempotency.js";
import { refuseNonJsonFields } from "../kernel/json-fields.js";
import { snapshotJson } from "../kernel/payload.js";
import { checkPositiveIntegers, DEFAULT_MEMORY_BYTES_PER_COMPANY } from "../kernel/store-options.js";
import { markInProcess } from "../kernel/in-process.js";

/** Options of {@link memoryInboxStore}. */
export interface MemoryInboxStoreOptions extends InboxOptions {
  /**
   * How many bytes one company's inboxes may hold together: each message's
   * event name and data as JSON, plus a fixed charge for what holding it
   * costs the process (160 bytes a message, 800 a user's inbox, 240 plus
   * its length an idempotency key, 96 plus its device id's length a device
   * cursor). An append past it, once expired messages are dropped, is
   * refused with `QUOTA_EXCEEDED`; nothing is stored.
   *
   * @default 67108864 (64 MiB)
   */
  maxBytesPerCompany?: number;
  /**
   * How many devices' cursors one user's inbox keeps. Past it the cursor
   * acknowledged longest ago is forgotten: that device is then sent the
   * kept messages again (same ids, which `@truss/client` drops), so cycling
   * device ids cannot grow the inbox without bound.
   *
   * @default 100
   */
  maxCursorsPerUser?: number;
  /** Clock in epoch ms, for tests. Default `Date.now`. */
  now?: () => number;
}

// What the company's quota charges for holding things, beyond the bytes of their text. Each is a little over
// what V8 (Node 20, 64-bit) was measured to keep per item with the heap after a full GC, so that
// `maxBytesPerCompany` stays near the memory a company really takes; measured once, not per append.

/** A message's object, id string and array slot (measured about 150 bytes). */
export const INBOX_MESSAGE_OVERHEAD_BYTES = 160;
/** A user's inbox: its object, maps, set and entry under the company (measured about 700–850 bytes). */
export const USER_INBOX_OVERHEAD_BYTES = 800;
/** An idempotency key's map entry and the first id it answers with, on top of its length (measured about 200–260 bytes). */
export const IDEMPOTENCY_KEY_OVERHEAD_BYTES = 240;
/** A device cursor's map entry and id, on top of its device id's length (measured about 70–100 bytes). */
export const CURSOR_OVERHEAD_BYTES = 96;

/** A stored message: its data kept as JSON text, so nothing a caller holds can change it. */
interface StoredMessage {
  id: string;
  event: string;
  /** The data as JSON; `undefined` for a message without data. */
  json: string | undefined;
  ts: number;
  /** What the company's quota counts for it: the UTF-8 size of the event name and `json`, and its overhead. */
  bytes: number;
  /** The message's undelivered call, while one is pending. */
  call?: PendingCall;
}

/** An undelivered call waiting for its due time, or leased to a claimer until `dueAt`. */
interface PendingCall {
  readonly user: UserKey;
  readonly inbox: UserInbox;
  readonly message: StoredMessage;
  /** When it may next be claimed (its due time, or the end of its lease), epoch ms. */
  dueAt: number;
  /** Claims so far. */
  attempts: number;
}

interface UserInbox {
  /** Oldest first; ids and `ts` both increase along the array. */
  messages: StoredMessage[];
  /** The last id handed out, kept after its message is dropped so ids never repeat. */
  lastMs: number;
  lastSeq: number;
  /** deviceId → last acknowledged id; the least recently moved first. */
  cursors: Map<string, string>;
  /**
   * Idempotency key → the id and ts of the first message stored with it.
   * Insertion order is age order (a key is re-inserted only after it was
   * forgotten), so the oldest keys are dropped from the front.
   */
  keys: Map<string, { id: string; ts: number }>;
  /** The pending undelivered calls of this user's messages. */
  calls: Set<PendingCall>;
  /** What the company's quota counts for this inbox and all it holds, given back when the inbox is forgotten. */
  bytes: number;
}

/**
 * The in-memory inbox, the engine's default for a single node. Messages live
 * only as long as the process, so use a durable inbox (`@truss/redis`) when
 * devices must get their messages across a restart.
 *
 * Ids follow Redis Stream rules so clients see the same shape from either
 * store: `<ms>-<seq>`, where `ms` never goes back even if the clock does, and
 * `seq` counts appends within that ms. TTL is applied lazily whenever a user's
 * inbox is touched (and for every inbox by `dropped()`), so no timer keeps the
 * process alive.
 *
 * Idempotency keys are kept per user next to the messages: each for the TTL
 * from its first message's ts, and at most
 * `INBOX_IDEMPOTENCY_KEYS_PER_MESSAGE × maxLength` of them, the oldest
 * dropped first. An append is one synchronous step, so two appends with the
 * same key on this instance never both store.
 *
 * Each company's inboxes hold at most `maxBytesPerCompany` bytes, counting
 * a fixed overhead for every message, inbox, idempotency key and cursor
 * besides their text (an append past it is refused with a `TrussError`
 * `QUOTA_EXCEEDED`), and each user's at most `maxCursorsPerUser` device
 * cursors, so neither a busy tenant, nor messages spread over many users,
 * nor a user cycling device ids can grow the process's memory without
 * bound. A user's inbox is forgotten, cursors and all, once its messages
 * and idempotency keys are gone: every id it hands out later is newer than
 * any cursor it held, so nothing a device would read changes.
 *
 * Undelivered calls (`undeliveredAfterMs`) live on their messages, so they
 * cost nothing past what the inbox already bounds, and go when their
 * message is dropped.
 *
 * @param options.ttlMs How long a message is kept; default 24 hours (`DEFAULTS.inbox.ttlMs`).
 * @param options.maxLength Messages kept per user; default 1,000 (`DEFAULTS.inbox.maxLength`).
 * @param options.maxBytesPerCompany Bytes one company's inboxes may hold, overheads included; default 64 MiB.
 * @param options.maxCursorsPerUser Device cursors kept per user; default 100 (`DEFAULTS.inbox.maxCursorsPerUser`).
 * @param options.now Clock in epoch ms, for tests; defaults to `Date.now`.
 * @throws RangeError when `ttlMs` or `maxLength` is not a positive number, or a quota not a positive integer.
 */
export function memoryInboxStore(options: MemoryInboxStoreOptions = {}): InboxStore {
  const now = options.now ?? Date.now;
  const ttlMs = options.ttlMs ?? DEFAULT_INBOX_TTL_MS;
  const maxLength = options.maxLength ?? DEFAULT_INBOX_MAX_LENGTH;
  if (!(ttlMs > 0)) throw new RangeError(`memoryInboxStore: ttlMs must be a positive number of ms, got ${ttlMs}`);
  if (!(Number.isInteger(maxLength) && maxLength > 0)) {
    throw new RangeError(`memoryInboxStore: maxLength must be a positive integer, got ${maxLength}`);
  }
  const maxKeys = INBOX_IDEMPOTENCY_KEYS_PER_MESSAGE * maxLength;
  const { maxBytesPerCompany, maxCursorsPerUser } = checkPositiveIntegers("memoryInboxStore", {
    maxBytesPerCompany: options.maxBytesPerCompany ?? DEFAULT_MEMORY_BYTES_PER_COMPANY,
    maxCursorsPerUser: options.maxCursorsPerUser ?? DEFAULT_INBOX_MAX_CURSORS_PER_USER,
  });

  /** companyId → userId → inbox: nested, never joined into one key, so no ids can collide. */
  const companies = new Map<string, Map<string, UserInbox>>();
  /** companyId → bytes its inboxes hold, as the quota counts them. */
  const companyBytes = new Map<string, number>();
  const drops: InboxDropStats = { expired: 0, overCap: 0 };
  /** Every pending undelivered call, what a claim scans. */
  const pendingCalls = new Set<PendingCall>();

  const forgetCall = (call: PendingCall) => {
    pendingCalls.delete(call);
    call.inbox.calls.delete(call);
    call.message.call = undefined;
  };

  /** Adds `bytes` (negative to give them back) to what an inbox and its company are counted to hold. */
  const charge = (companyId: string, inbox: UserInbox, bytes: number) => {
    inbox.bytes += bytes;
    companyBytes.set(companyId, (companyBytes.get(companyId) ?? 0) + bytes);
  };

  /** Drops the oldest `count` messages of a user's inbox, and their bytes from the company's. */
  const dropOldest = (companyId: string, inbox: UserInbox, count: number) => {
    let bytes = 0;
    for (const message of removeOldest(inbox.messages, count)) {
      bytes += message.bytes;
      if (message.call) forgetCall(message.call);
    }
    charge(companyId, inbox, -bytes);
  };

  const inboxOf = (user: UserKey): UserInbox | undefined => companies.get(user.companyId)?.get(user.userId);
  const inboxFor = (user: UserKey): UserInbox => {
    let users = companies.get(user.companyId);
    if (!users) companies.set(user.companyId, (users = new Map()));
    let inbox = users.get(user.userId);
    if (!inbox) {
      inbox = { messages: [], lastMs: 0, lastSeq: -1, cursors: new Map(), keys: new Map(), calls: new Set(), bytes: 0 };
      users.set(user.userId, inbox);
      charge(user.companyId, inbox, USER_INBOX_OVERHEAD_BYTES);
    }
    return inbox;
  };

  /**
   * Forgets a user's inbox that holds no message and no idempotency key, and gives its bytes back. Its
   * cursors go with it: a fresh inbox's ids start at the clock, past every id this one handed out (its
   * messages all expired, so a TTL has passed since the last), so a device without a cursor reads the same.
   */
  const forgetIfEmpty = (companyId: string, userId: string, inbox: UserInbox) => {
    if (inbox.messages.length > 0 || inbox.keys.size > 0) return;
    const users = companies.get(companyId);
    if (users?.get(userId) !== inbox) return;
    users.delete(userId);
    const left = (companyBytes.get(companyId) ?? 0) - inbox.bytes;
    if (users.size > 0) companyBytes.set(companyId, left);
    else {
      companies.delete(companyId);
      companyBytes.delete(companyId);
    }
  };

  const dropExpired = (companyId: string, inbox: UserInbox, at: number) => {
    const { messages } = inbox;
    let count = 0;
    while (count < messages.length && messages[count]!.ts + ttlMs <= at) count += 1;
    if (count === 0) return;
    dropOldest(companyId, inbox, count);
    drops.expired += count;
  };

  /** Whether `added` more bytes keep the company within its quota. */
  const fits = (companyId: string, added: number) => (companyBytes.get(companyId) ?? 0) + added <= maxBytesPerCompany;

  /**
   * Refuses an append that would take the company past its bytes, once every one of its inboxes dropped what
   * expired (and the inboxes left empty were forgotten; the appending user's own is kept for the append).
   */
  const assertWithinQuota = (user: UserKey, inbox: UserInbox, bytes: number, at: number) => {
    // The append drops the user's oldest past the length cap: that room counts.
    let freed = 0;
    for (let index = 0; index < inbox.messages.length + 1 - maxLength; index++) freed += inbox.messages[index]!.bytes;
    if (fits(user.companyId, bytes - freed)) return;
    for (const [userId, other] of companies.get(user.companyId) ?? []) {
      dropExpired(user.companyId, other, at);
      if (other !== inbox) {
        dropKeys(user.companyId, other, at, 0);
        forgetIfEmpty(user.companyId, userId, other);
      }
    }
    if (fits(user.companyId, bytes - freed)) return;
    const held = companyBytes.get(user.companyId) ?? 0;
    forgetIfEmpty(user.companyId, user.userId, inbox);
    throw new TrussError(
      "QUOTA_EXCEEDED",
      `The message was not stored: the company's inboxes hold ${held} bytes, and this server keeps at most ${maxBytesPerCompany} for one company until messages are read or expire.`,
    );
  };

  /** Forgets keys past the TTL, then the oldest beyond the bound (`extra` makes room for keys about to be added). */
  const dropKeys = (companyId: string, inbox: UserInbox, at: number, extra: number) => {
    let bytes = 0;
    for (const [key, first] of inbox.keys) {
      if (first.ts + ttlMs > at && inbox.keys.size + extra <= maxKeys) break;
      inbox.keys.delete(key);
      bytes += keyBytes(key);
    }
    if (bytes > 0) charge(companyId, inbox, -bytes);
  };

  return markInProcess({
    async append(user, event, data, options) {
      const key = idempotencyKeyOf(options, "memoryInboxStore");
      const afterMs = undeliveredAfterMsOf(options, "memoryInboxStore");
      // The engine hands over a snapshot it already checked and encoded; anything else is encoded here,
      // before any state changes, so data JSON cannot carry rejects with nothing stored.
      const known = snapshotJson(data);
      if (known === undefined) refuseNonJsonFields(data, "memoryInboxStore");
      const json = known ?? (JSON.stringify(data) as string | undefined);
      const at = now();
      const inbox = inboxFor(user);
      dropExpired(user.companyId, inbox, at);
      if (key !== undefined) {
        dropKeys(user.companyId, inbox, at, 0);
        const first = inbox.keys.get(key);
        if (first) {
          const index = firstIndexAfter(inbox.messages, first.id) - 1;
          const stored = inbox.messages[index];
          // The cap may have dropped the first message: its id and ts still answer for it.
          const message = stored?.id === first.id ? decode(stored) : decode({ id: first.id, event, json, ts: first.ts, bytes: 0 });
          return { message, duplicate: true };
        }
      }
      const bytes = INBOX_MESSAGE_OVERHEAD_BYTES + Buffer.byteLength(event) + (json === undefined ? 0 : Buffer.byteLength(json));
      const added = bytes + (key === undefined ? 0 : keyBytes(key));
      assertWithinQuota(user, inbox, added, at);
      const ms = Math.max(at, inbox.lastMs);
      const seq = ms === inbox.lastMs ? inbox.lastSeq + 1 : 0;
      inbox.lastMs = ms;
      inbox.lastSeq = seq;
      const message: StoredMessage = { id: `${ms}-${seq}`, event, json, ts: ms, bytes };
      inbox.messages.push(message);
      charge(user.companyId, inbox, added);
      const overCap = inbox.messages.length - maxLength;
      if (overCap > 0) {
        dropOldest(user.companyId, inbox, overCap);
        drops.overCap += overCap;
      }
      if (afterMs !== undefined) {
        const call: PendingCall = { user: { companyId: user.companyId, userId: user.userId }, inbox, message, dueAt: ms + afterMs, attempts: 0 };
        message.call = call;
        inbox.calls.add(call);
        pendingCalls.add(call);
      }
      if (key !== undefined) {
        dropKeys(user.companyId, inbox, at, 1);
        inbox.keys.set(key, { id: message.id, ts: message.ts });
      }
      // A snapshot is the engine's own copy: it goes back as the message's data, with no decode.
      return { message: known === undefined ? decode(message) : { id: message.id, event, data, ts: message.ts }, duplicate: false };
    },

    async read(user, afterId, limit) {
      if (afterId !== null) assertInboxId(afterId);
      const inbox = inboxOf(user);
      if (!inbox || limit <= 0) return [];
      dropExpired(user.companyId, inbox, now());
      forgetIfEmpty(user.companyId, user.userId, inbox);
      const { messages } = inbox;
      const start = afterId === null ? 0 : firstIndexAfter(messages, afterId);
      return messages.slice(start, start + limit).map(decode);
    },

    async ack(device, id) {
      assertInboxId(id);
      const inbox = inboxFor(device);
      // Most inboxes have no pending undelivered call, and most acks move a cursor a user already has: neither walks anything then.
      if (inbox.calls.size > 0) for (const call of inbox.calls) if (compareInboxIds(call.message.id, id) <= 0) forgetCall(call);
      const { cursors } = inbox;
      const current = cursors.get(device.deviceId);
      if (current !== undefined && compareInboxIds(id, current) <= 0) return;
      // Re-inserted at the end, so the cursor moved longest ago comes first.
      cursors.delete(device.deviceId);
      cursors.set(device.deviceId, id);
      // Acks are never refused: a new cursor is counted, so appends make room for it.
      if (current === undefined) charge(device.companyId, inbox, cursorBytes(device.deviceId));
      if (cursors.size <= maxCursorsPerUser) return;
      for (const deviceId of cursors.keys()) {
        if (cursors.size <= maxCursorsPerUser) break;
        cursors.delete(deviceId);
        charge(device.companyId, inbox, -cursorBytes(deviceId));
      }
    },

    async cursor(device) {
      return inboxOf(device)?.cursors.get(device.deviceId) ?? null;
    },

    async claimUndelivered(limit, leaseMs) {
      const at = now();
      const due: PendingCall[] = [];
      for (const call of pendingCalls) {
        if (call.dueAt > at) continue;
        // Expiry is lazy: a call whose message is past the TTL goes with it here.
        dropExpired(call.user.companyId, call.inbox, at);
        if (call.message.call === call) due.push(call);
        else forgetIfEmpty(call.user.companyId, call.user.userId, call.inbox);
      }
      due.sort((a, b) => a.dueAt - b.dueAt);
      return due.slice(0, Math.max(0, limit)).map((call): UndeliveredClaim => {
        call.attempts += 1;
        call.dueAt = at + leaseMs;
        return { user: { ...call.user }, message: decode(call.message), attempt: call.attempts };
      });
    },

    async settleUndelivered(claim, outcome) {
      const inbox = inboxOf(claim.user);
      if (!inbox || !isInboxId(claim.message.id)) return;
      const call = inbox.messages[firstIndexAfter(inbox.messages, claim.message.id) - 1]?.call;
      if (!call || call.message.id !== claim.message.id || call.attempts !== claim.attempt) return;
      if (outcome === "done") forgetCall(call);
      else call.dueAt = now() + outcome.retryAfterMs;
    },

    async dropped() {
      const at = now();
      for (const [companyId, users] of companies) {
        for (const [userId, inbox] of users) {
          dropExpired(companyId, inbox, at);
          dropKeys(companyId, inbox, at, 0);
          forgetIfEmpty(companyId, userId, inbox);
        }
      }
      return { ...drops };
    },
  });
}

/** What the quota counts for an idempotency key kept in an inbox. */
function keyBytes(key: string): number {
  return IDEMPOTENCY_KEY_OVERHEAD_BYTES + key.length;
}

/** What the quota counts for a device's cursor. */
function cursorBytes(deviceId: string): number {
  return CURSOR_OVERHEAD_BYTES + deviceId.length;
}

/** Rejects ids that `compareInboxIds` would order as NaN, i.e. arbitrarily. */
function assertInboxId(id: string): void {
  if (!isInboxId(id)) {
    throw new TypeError(`memoryInboxStore: "${id}" is not an inbox id (expected <ms>-<seq>)`);
  }
}

/** Binary search: the index of the first message whose id is greater than `afterId`. */
function firstIndexAfter(messages: readonly StoredMessage[], afterId: string): number {
  let low = 0;
  let high = messages.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareInboxIds(messages[middle]!.id, afterId) <= 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

function decode({ id, event, json, ts }: StoredMessage): InboxMessage {
  return { id, event, data: json === undefined ? undefined : JSON.parse(json), ts };
}
