import type { Db } from "../db.js";

/** How a message no device took reached its user. */
export type NotificationChannel = "email" | "push";

/** One message sent to a user another way, because no device of theirs took it in time. */
export interface SentNotification {
  userId: string;
  /** The user's name, for "e-mailed to Chloe Park". */
  userName: string;
  channel: NotificationChannel;
  /** The event of the inbox message (`notification:new`). */
  event: string;
  /** What the user was told: the notification's title. */
  summary: string;
  /** When it was sent, in epoch ms. */
  sentAt: number;
  /** The inbox message's id: at most one row per message. */
  messageId: string;
}

/** A row to record; `userName` is read back from the users table. */
export type NewSentNotification = Omit<SentNotification, "userName">;

/** How many rows the sent-notifications list shows. */
export const SENT_NOTIFICATIONS_SHOWN = 50;

const COLUMNS =
  "n.user_id AS userId, u.name AS userName, n.channel, n.event, n.summary, n.sent_at AS sentAt, n.message_id AS messageId";

/** The log of notifications sent by e-mail or Web Push, each row scoped to one company. */
export function createNotificationsSent(db: Db) {
  const insert = db.prepare(
    `INSERT INTO notifications_sent (company_id, user_id, channel, event, summary, sent_at, message_id)
     VALUES (@companyId, @userId, @channel, @event, @summary, @sentAt, @messageId)
     ON CONFLICT (company_id, user_id, message_id) DO NOTHING`,
  );
  const has = db.prepare<[string, string, string], { one: number }>("SELECT 1 AS one FROM notifications_sent WHERE company_id = ? AND user_id = ? AND message_id = ?");
  const ofCompany = db.prepare<[string, number], SentNotification>(
    `SELECT ${COLUMNS} FROM notifications_sent n JOIN users u ON u.id = n.user_id WHERE n.company_id = ? ORDER BY n.sent_at DESC, n.id DESC LIMIT ?`,
  );
  const ofUser = db.prepare<[string, string, number], SentNotification>(
    `SELECT ${COLUMNS} FROM notifications_sent n JOIN users u ON u.id = n.user_id WHERE n.company_id = ? AND n.user_id = ? ORDER BY n.sent_at DESC, n.id DESC LIMIT ?`,
  );

  return {
    /** Records a sent notification once per message: `false` when the message already has its row. */
    record: (companyId: string, row: NewSentNotification): boolean => insert.run({ ...row, companyId }).changes > 0,
    /** Whether the message was already sent to its user. */
    has: (companyId: string, userId: string, messageId: string): boolean => has.get(companyId, userId, messageId) !== undefined,
    /** The latest rows of the company, or of one of its users, newest first. */
    list: (companyId: string, userId?: string): SentNotification[] =>
      userId === undefined ? ofCompany.all(companyId, SENT_NOTIFICATIONS_SHOWN) : ofUser.all(companyId, userId, SENT_NOTIFICATIONS_SHOWN),
  };
}
