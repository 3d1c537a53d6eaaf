import {
  DEFAULTS,
  idempotencyKeyOf,
  INBOX_IDEMPOTENCY_KEYS_PER_MESSAGE,
  type InboxOptions,
  type InboxStore,
  undeliveredAfterMsOf,
  type UndeliveredClaim,
  type UserKey,
} from "@truss/core";
import { type InboxMessage, isInboxId } from "@truss/protocol";
import { Sweeper, type SweepOptions } from "./sweep.js";
import { refuseNul, Statements, toNumber, totalsSlot, type PostgresStoreConnection } from "./sql.js";

/** Options of {@link postgresInboxStore}. */
export interface PostgresInboxStoreOptions extends InboxOptions, PostgresStoreConnection, SweepOptions {}

interface AppendRow {
  ms: string;
  seq: string;
  duplicate: boolean;
  kept: boolean;
  event: string | null;
  data: string | null;
}

interface ClaimRow {
  company_id: string;
  user_id: string;
  ms: string;
  seq: string;
  attempts: number;
  event: string;
  data: string | null;
}

interface MessageRow {
  ms: string;
  seq: string;
  event: string;
  data: string | null;
}

/**
 * An {@link InboxStore} on PostgreSQL, in the `inbox_*` tables `migrate()`
 * creates. Each user of a company has a row that every append locks (created
 * with `INSERT … ON CONFLICT`), and the SQL function `inbox_append` checks the
 * idempotency key, assigns the id, stores the message, trims by age and to
 * `maxLength` and records the key in that one statement, so two nodes
 * appending with one key store one message, and ids (`<ms>-<seq>` by the
 * server's clock, like Redis Stream ids) strictly increase per user.
 *
 * The TTL is applied lazily: an append drops its user's expired messages,
 * and a read drops them before answering, so an expired message is never
 * read. A bounded sweep (at most `sweepBatch` users a run, at most once per
 * `sweepIntervalMs`, started by a call of this store and never delaying it)
 * clears users whose every message expired, so an inbox nobody reads again
 * does not stay. Everything dropped is counted in `inbox_totals`, shared by
 * every node. Cursors are kept, at most `maxCursorsPerUser` per user: an
 * ack that moves one forgets the user's cursors moved longest ago past it
 * (`inbox_ack`, migration 007). A cursor whose id is older than the TTL
 * points past no message a read can still return, so the sweep deletes it
 * too (at most `sweepBatch` a run, migration 008): a device that never
 * connects again leaves nothing behind, and one that does reads from the
 * oldest kept message, as it would have from its cursor.
 *
 * Undelivered calls (`undeliveredAfterMs`) are rows of `inbox_undelivered`
 * (migration 005), recorded in the append's statement, deleted by an ack
 * that covers them and by the deletion of their message (a foreign key,
 * `ON DELETE CASCADE`), and claimed with `FOR UPDATE SKIP LOCKED`, so two
 * nodes never lease one call at once. Due times are by the server's clock.
 *
 * Every call rejects within `timeoutMs` (default 5 s) when PostgreSQL cannot
 * be reached, and works again, without a restart, once it can.
 *
 * @throws RangeError when `ttlMs`, `maxLength`, `maxCursorsPerUser` or a sweep option is not a positive integer.
 * @throws TypeError when `pool` is not a pg Pool or `schema` not an SQL identifier; from `append` when the idempotency key is malformed, from `ack` when the id is not an inbox id.
 * @throws TrussError `INVALID_PAYLOAD` from any call whose ids, event name or key contain U+0000, which PostgreSQL text cannot hold, or that PostgreSQL refuses for good (an id too long to index).
 */
export function postgresInboxStore(options: PostgresInboxStoreOptions): InboxStore {
  const ttlMs = options.ttlMs ?? DEFAULTS.inbox.ttlMs;
  const maxLength = options.maxLength ?? DEFAULTS.inbox.maxLength;
  if (!(Number.isSafeInteger(ttlMs) && ttlMs > 0)) throw new RangeError(`postgresInboxStore: ttlMs must be a positive integer of ms, got ${ttlMs}`);
  if (!(Number.isSafeInteger(maxLength) && maxLength > 0 && maxLength < 2 ** 31 / INBOX_IDEMPOTENCY_KEYS_PER_MESSAGE)) {
    throw new RangeError(`postgresInboxStore: maxLength must be a positive integer, got ${maxLength}`);
  }
  const maxCursorsPerUser = options.maxCursorsPerUser ?? DEFAULTS.inbox.maxCursorsPerUser;
  if (!(Number.isSafeInteger(maxCursorsPerUser) && maxCursorsPerUser > 0 && maxCursorsPerUser < 2 ** 31)) {
    throw new RangeError(`postgresInboxStore: maxCursorsPerUser must be a positive integer, got ${maxCursorsPerUser}`);
  }
  const sql = new Statements("postgresInboxStore", options);
  const s = sql.schema;
  const maxKeys = INBOX_IDEMPOTENCY_KEYS_PER_MESSAGE * maxLength;
  const sweeper: Sweeper = new Sweeper("postgresInboxStore", options, (): Promise<unknown> => sql.rows(`SELECT ${s}.inbox_sweep($1, $2)`, [ttlMs, sweeper.batch]));
  const slotOf = (user: UserKey) => totalsSlot(user.companyId, user.userId);
  const checkUser = (user: UserKey, more: Record<string, string | undefined> = {}) =>
    refuseNul("postgresInboxStore", { companyId: user.companyId, userId: user.userId, ...more });

  return {
    async append(user, event, data, appendOptions) {
      const idempotencyKey = idempotencyKeyOf(appendOptions, "postgresInboxStore");
      const afterMs = undeliveredAfterMsOf(appendOptions, "postgresInboxStore");
      checkUser(user, { event, idempotencyKey });
      const encoded = data === undefined ? null : JSON.stringify(data);
      const values = [user.companyId, user.userId, event, encoded, idempotencyKey ?? null, ttlMs, maxLength, maxKeys, slotOf(user)];
      const row =
        afterMs === undefined
          ? await sql.row<AppendRow>(`SELECT * FROM ${s}.inbox_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, values, { lockTimeout: true })
          : await sql.row<AppendRow>(`SELECT * FROM ${s}.inbox_append_undelivered($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, [...values, afterMs], { lockTimeout: true });
      sweeper.due();
      if (row.duplicate) {
        // The cap may have dropped the first message: its id (and so its ts) still answer for it.
        const message = row.kept ? toMessage(row.ms, row.seq, row.event ?? "", row.data) : toMessage(row.ms, row.seq, event, encoded);
        return { message, duplicate: true };
      }
      return { message: toMessage(row.ms, row.seq, event, encoded), duplicate: false };
    },

    async read(user, afterId, limit) {
      checkUser(user);
      const [afterMs, afterSeq] = afterId === null ? ["-1", "-1"] : parseId(afterId);
      if (!(limit > 0)) return [];
      const rows = await sql.rows<MessageRow>(`SELECT * FROM ${s}.inbox_read($1, $2, $3, $4, $5, $6, $7, $8)`, [
        user.companyId,
        user.userId,
        afterMs,
        afterSeq,
        Math.min(Math.floor(limit), 2 ** 31 - 1),
        ttlMs,
        slotOf(user),
      ], { lockTimeout: true });
      sweeper.due();
      return rows.map((row) => toMessage(row.ms, row.seq, row.event, row.data));
    },

    async ack(device, id) {
      checkUser(device, { deviceId: device.deviceId });
      const [ms, seq] = parseId(id);
      // One call: the cursor moves, the calls it covers are cancelled and the cursors past the cap forgotten together.
      await sql.rows(`SELECT ${s}.inbox_ack($1, $2, $3, $4, $5, $6)`, [device.companyId, device.userId, device.deviceId, ms, seq, maxCursorsPerUser]);
    },

    async cursor(device) {
      checkUser(device, { deviceId: device.deviceId });
      const [row] = await sql.rows<{ id: string }>(
        `SELECT ms || '-' || seq AS id FROM ${s}.inbox_cursors WHERE company_id = $1 AND user_id = $2 AND device_id = $3`,
        [device.companyId, device.userId, device.deviceId],
      );
      return row?.id ?? null;
    },

    async dropped() {
      const row = await sql.row<{ expired: string | null; over_cap: string | null }>(
        `SELECT sum(expired) AS expired, sum(over_cap) AS over_cap FROM ${s}.inbox_totals`,
      );
      return { expired: toNumber(row.expired), overCap: toNumber(row.over_cap) };
    },

    async ping() {
      await sql.rows("SELECT 1");
    },

    async claimUndelivered(limit, leaseMs) {
      if (!(limit > 0)) return [];
      const rows = await sql.rows<ClaimRow>(`SELECT * FROM ${s}.inbox_claim_undelivered($1, $2, $3)`, [
        Math.min(Math.floor(limit), 2 ** 31 - 1),
        Math.floor(leaseMs),
        ttlMs,
      ]);
      return rows.map(
        (row): UndeliveredClaim => ({
          user: { companyId: row.company_id, userId: row.user_id },
          message: toMessage(row.ms, row.seq, row.event, row.data),
          attempt: Number(row.attempts),
        }),
      );
    },

    async settleUndelivered(claim, outcome) {
      checkUser(claim.user);
      const [ms, seq] = parseId(claim.message.id);
      const retryMs = outcome === "done" ? null : Math.max(0, Math.floor(outcome.retryAfterMs));
      await sql.rows(`SELECT ${s}.inbox_settle_undelivered($1, $2, $3, $4, $5, $6)`, [claim.user.companyId, claim.user.userId, ms, seq, claim.attempt, retryMs]);
    },
  };
}

/** An inbox id's two parts, without leading zeros, as text for bigint parameters. */
function parseId(id: string): [string, string] {
  if (!isInboxId(id)) throw new TypeError(`postgresInboxStore: "${id}" is not an inbox id (expected <ms>-<seq>)`);
  const [ms, seq] = id.split("-");
  return [String(BigInt(ms!)), String(BigInt(seq!))];
}

function toMessage(ms: string, seq: string, event: string, encodedData: string | null): InboxMessage {
  return { id: `${ms}-${seq}`, event, data: encodedData === null ? undefined : JSON.parse(encodedData), ts: toNumber(ms) };
}
