import type { Db } from "../db.js";

/** A browser's Web Push subscription, as `PushSubscription.toJSON()` gives it, registered by one device of a user. */
export interface PushSubscriptionRecord {
  /** The push service's URL for this browser; unique: a browser that logs in as someone else moves to them. */
  endpoint: string;
  /** The browser's P-256 public key (base64url), which the payload is encrypted to. */
  p256dh: string;
  /** The browser's 16-byte authentication secret (base64url). */
  auth: string;
  /** The dashboard's device id, to tell a user's browsers apart. */
  deviceId: string;
}

/** The most subscriptions one user keeps; registering another drops the oldest. */
export const MAX_PUSH_SUBSCRIPTIONS_PER_USER = 10;

const COLUMNS = "endpoint, p256dh, auth, device_id AS deviceId";

/** Web Push subscriptions, each scoped to one company's user. */
export function createPushSubscriptions(db: Db, now: () => number = Date.now) {
  const list = db.prepare<[string, string], PushSubscriptionRecord>(
    `SELECT ${COLUMNS} FROM push_subscriptions WHERE company_id = ? AND user_id = ? ORDER BY created_at DESC, endpoint`,
  );
  const upsert = db.prepare(
    `INSERT INTO push_subscriptions (endpoint, company_id, user_id, device_id, p256dh, auth, created_at)
     VALUES (@endpoint, @companyId, @userId, @deviceId, @p256dh, @auth, @createdAt)
     ON CONFLICT (endpoint) DO UPDATE SET company_id = excluded.company_id, user_id = excluded.user_id, device_id = excluded.device_id,
       p256dh = excluded.p256dh, auth = excluded.auth, created_at = excluded.created_at`,
  );
  const trim = db.prepare(
    `DELETE FROM push_subscriptions WHERE company_id = @companyId AND user_id = @userId AND endpoint NOT IN (
       SELECT endpoint FROM push_subscriptions WHERE company_id = @companyId AND user_id = @userId ORDER BY created_at DESC, endpoint LIMIT @keep)`,
  );
  const remove = db.prepare("DELETE FROM push_subscriptions WHERE company_id = ? AND user_id = ? AND endpoint = ?");
  const save = db.transaction((companyId: string, userId: string, subscription: PushSubscriptionRecord) => {
    upsert.run({ ...subscription, companyId, userId, createdAt: now() });
    trim.run({ companyId, userId, keep: MAX_PUSH_SUBSCRIPTIONS_PER_USER });
  });

  return {
    /** The user's subscriptions, newest first. */
    list: (companyId: string, userId: string) => list.all(companyId, userId),
    /** Registers (or renews) a browser's subscription for the user, taking it from whoever had it before. */
    save: (companyId: string, userId: string, subscription: PushSubscriptionRecord): void => save.immediate(companyId, userId, subscription),
    /** Forgets one subscription of the user (logged out, or gone at the push service); `false` when it was not theirs. */
    remove: (companyId: string, userId: string, endpoint: string): boolean => remove.run(companyId, userId, endpoint).changes > 0,
  };
}
