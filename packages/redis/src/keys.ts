/**
 * Every Redis key Truss writes is built here, so the layout documented in the
 * README has one source. Two rules hold for all of them:
 *
 * - Ids are encoded with `encodeURIComponent` before they are joined with
 *   `:`. The encoding turns `:` into `%3A` (and `{`, `}` into `%7B`, `%7D`), so
 *   no company, user, type or document id can collide with another key or
 *   smuggle in a hash tag.
 * - Keys that one Lua script touches together share a hash tag (`{...}`), so
 *   they live in one Redis Cluster slot and the same scripts run unchanged on a
 *   single server and on a cluster.
 */

/** The prefix every key starts with unless the caller picks another. */
export const DEFAULT_PREFIX = "truss";

/** Encodes one id so it can be joined with `:` without ambiguity. */
export function encodeId(id: string): string {
  return encodeURIComponent(id);
}

/** Reverses {@link encodeId}. */
export function decodeId(encoded: string): string {
  return decodeURIComponent(encoded);
}

/**
 * A class of key sets under one hash tag: each key is the tag and its
 * suffix, built when it is read, so a call that names a few of a set's keys
 * builds only those.
 */
function lazyKeys<K extends string>(suffixes: Record<K, string>): new (tag: string) => Record<K, string> {
  class Keys {
    constructor(readonly tag: string) {}
  }
  for (const name of Object.keys(suffixes) as K[]) {
    const suffix = suffixes[name];
    Object.defineProperty(Keys.prototype, name, {
      get(this: Keys) {
        return this.tag + suffix;
      },
      enumerable: true,
    });
  }
  return Keys as unknown as new (tag: string) => Record<K, string>;
}

/**
 * Checks a caller's key prefix. A brace in the prefix would start or end a
 * hash tag and silently break the one-slot guarantee, so it is refused.
 *
 * @throws TypeError when the prefix is empty or contains `{` or `}`.
 */
export function checkPrefix(prefix: string): string {
  if (prefix.length === 0 || /[{}]/.test(prefix)) {
    throw new TypeError(`@truss/redis: prefix must be non-empty and free of "{" and "}", got ${JSON.stringify(prefix)}`);
  }
  return prefix;
}

/** Keys of one company's presence; all share the hash tag `{<prefix>:c:<company>}`. */
export interface CompanyPresenceKeys {
  /** ZSET of `<user>:<device>` (both encoded) scored by expiry, epoch ms: what a sweep scans. */
  expiry: string;
  /** HASH of `<user>:<device>` to `<connectedAt>:<lastSeen>`: the listing detail. */
  devices: string;
  /** SET of encoded user ids that have at least one device entry. */
  users: string;
  /** The per-user ZSET key without the user: append the encoded user id. */
  userBase: string;
}

/** The keys of one company's presence data. */
export function companyPresenceKeys(prefix: string, companyId: string): CompanyPresenceKeys {
  const tag = `{${prefix}:c:${encodeId(companyId)}}`;
  return {
    expiry: `${tag}:presence:expiry`,
    devices: `${tag}:presence:devices`,
    users: `${tag}:presence:users`,
    userBase: `${tag}:presence:user:`,
  };
}

/** Keys of one scope's presence (a topic's or a document's); both share the hash tag `{<prefix>:sp:<company>:<scope>}`. */
export interface ScopedPresenceKeys {
  /** ZSET of member ids scored by expiry, epoch ms. */
  expiry: string;
  /** HASH of member id to the member as JSON. */
  members: string;
}

/** The keys of one scope's presence, `scope` being the scope's key (`scopeKey` of `@truss/core`). */
export function scopedPresenceKeys(prefix: string, companyId: string, scope: string): ScopedPresenceKeys {
  const tag = `{${prefix}:sp:${encodeId(companyId)}:${encodeId(scope)}}`;
  return { expiry: `${tag}:expiry`, members: `${tag}:members` };
}

/** Keys of the global sweep index; all share the hash tag `{<prefix>:presence}`. */
export interface SweepIndexKeys {
  /** ZSET of encoded company ids scored by when the company next needs a sweep. */
  due: string;
  /** HASH of encoded company id to the generation of its latest write. */
  writes: string;
  /** Counter that hands out write generations, so one is never reused. */
  generation: string;
}

/** The keys of the sweep index that finds companies with expired devices. */
export function sweepIndexKeys(prefix: string): SweepIndexKeys {
  const tag = `{${prefix}:presence}`;
  return { due: `${tag}:due`, writes: `${tag}:writes`, generation: `${tag}:generation` };
}

/** Keys of one user's inbox; all share the hash tag `{<prefix>:inbox:<company>:<user>}`. */
export interface InboxKeys {
  /** The STREAM of messages. */
  log: string;
  /** HASH of device id to the last acknowledged message id; at most `maxCursorsPerUser` fields, expiring with the TTL once no cursor moves. */
  cursors: string;
  /** ZSET of the devices in `cursors`, scored by when each cursor last moved (epoch ms): past the cap the lowest is forgotten. */
  cursorOrder: string;
  /** HASH of idempotency key (as given, not encoded: it is a field, not a key) to the id of the first message stored with it. */
  idempotency: string;
  /**
   * LIST of `<id> <idempotency key>`, oldest first: the order keys are
   * forgotten in, past the TTL or the bound. Both idempotency keys expire
   * (`PEXPIRE`) once every key in them is past the TTL.
   */
  idempotencyOrder: string;
  /** ZSET of the ids of messages with a pending undelivered call, scored by when it may next be claimed (due time or end of lease, epoch ms). */
  undelivered: string;
  /** ZSET of the same ids as `undelivered`, scored by their ms: what an ack ranges over, up to the id it acknowledges. */
  undeliveredById: string;
  /** HASH of message id to how many times its undelivered call was claimed. */
  undeliveredAttempts: string;
}

/** The keys of one user's inbox; users are scoped by company, so both ids are in the tag. */
export function inboxKeys(prefix: string, companyId: string, userId: string): InboxKeys {
  return new UserInboxKeys(`{${prefix}:inbox:${encodeId(companyId)}:${encodeId(userId)}}`);
}

/** A user's inbox keys, each built when it is read: an append or an ack names one to six of the eight. */
const UserInboxKeys = lazyKeys<keyof InboxKeys>({
  log: ":log",
  cursors: ":cursors",
  cursorOrder: ":cursors:order",
  idempotency: ":idempotency",
  idempotencyOrder: ":idempotency:order",
  undelivered: ":undelivered",
  undeliveredById: ":undelivered:by-id",
  undeliveredAttempts: ":undelivered:attempts",
});

/**
 * The index of users with pending undelivered calls, under the hash tag
 * `{<prefix>:inbox-undelivered}`: the same three keys as the presence
 * sweep's index ({@link SweepIndexKeys}), members `<company>:<user>` (both
 * encoded).
 */
export function undeliveredIndexKeys(prefix: string): SweepIndexKeys {
  const tag = `{${prefix}:inbox-undelivered}`;
  return { due: `${tag}:due`, writes: `${tag}:writes`, generation: `${tag}:generation` };
}

/** The HASH with the inbox drop totals (`expired`, `overCap`), shared by every node. */
export function inboxStatsKey(prefix: string): string {
  return `${prefix}:inbox:stats`;
}

/** Keys of one document; all share the hash tag `{<prefix>:doc:<company>:<type>:<id>}`. */
export interface DocumentKeys {
  /**
   * HASH with the latest `version`, the latest committed `document` (JSON)
   * and, once more writers' horizons were forgotten than the document keeps
   * (or, written before records were kept per writer, once the
   * `maxMutations` cap pushed out a mutation), `forgotten`: the document's
   * horizon (epoch ms), which applies to every writer.
   */
  latest: string;
  /** LIST of committed versions (JSON), newest first, trimmed to `maxHistory` and `maxHistoryBytes`. */
  history: string;
  /** LIST of the UTF-8 size of each history entry's `data` JSON, in step with `history`. */
  historyBytes: string;
  /** HASH of mutation id to the version its commit made: the mutations the document remembers. */
  mutations: string;
  /**
   * ZSET of mutations recorded before records were kept per writer, each as
   * `<version, 16 digits>:<mutation id>` scored by when it was recorded
   * (epoch ms). Nothing is added any more; its records are forgotten past
   * `mutationTtlMs`, so it empties within a TTL of an upgrade.
   */
  mutationTimes: string;
  /**
   * ZSET, every score 0, of the mutations each writer has on record, as
   * `<writer's length>:<writer>:<recorded at, 16 digits>:<version, 16
   * digits>:<mutation id>`: in lexical order, one writer's records sit
   * together, oldest first (a tie within a millisecond in commit order).
   */
  mutationLog: string;
  /** ZSET of the writers with records, scored by their newest record time (epoch ms): the least recently committed first. */
  mutationWriters: string;
  /** ZSET of writers' horizons: writer → the newest of their record times forgotten (by their cap, or with the whole writer). */
  mutationHorizons: string;
}

/** The keys of one document. */
export function documentKeys(prefix: string, key: { companyId: string; type: string; id: string }): DocumentKeys {
  return new OneDocumentKeys(`{${prefix}:doc:${encodeId(key.companyId)}:${encodeId(key.type)}:${encodeId(key.id)}}`);
}

/** A document's keys, each built when it is read: a read names one or two of the eight, a commit without a mutation id three. */
const OneDocumentKeys = lazyKeys<keyof DocumentKeys>({
  latest: "",
  history: ":history",
  historyBytes: ":history:bytes",
  mutations: ":mutations",
  mutationTimes: ":mutations:times",
  mutationLog: ":mutations:log",
  mutationWriters: ":mutations:writers",
  mutationHorizons: ":mutations:horizons",
});

/** Keys of the revocation log; all share the hash tag `{<prefix>:revocations}`, so one script updates them together. */
export interface RevocationKeys {
  /** Counter that numbers records in the order they are added. */
  sequence: string;
  /** ZSET of every kept record, each `<sequence> <JSON>`, scored by its sequence number: what nodes read on from their cursor. */
  log: string;
  /** ZSET of the same members scored by `expiresAt` (epoch ms): what the trim removes. */
  expiry: string;
  /** A random id written with the first record, so a cursor from before Redis lost its data reads from the start. */
  epoch: string;
  /** The per-user HASH key without the user: append {@link revocationUserSuffix}. */
  userBase: string;
}

/** The keys of the revocation log. */
export function revocationKeys(prefix: string): RevocationKeys {
  const tag = `{${prefix}:revocations}`;
  return { sequence: `${tag}:sequence`, log: `${tag}:log`, expiry: `${tag}:expiry`, epoch: `${tag}:epoch`, userBase: `${tag}:user:` };
}

/** The end of one user's revocations key: the company and user ids, encoded. */
export function revocationUserSuffix(companyId: string, userId: string): string {
  return `${encodeId(companyId)}:${encodeId(userId)}`;
}
