/**
 * Durable messages to one user: `toUser` stores them in the user's inbox
 * before pushing them, so a foreman whose phone is off still gets the
 * approval when it reconnects.
 *
 * @module
 */
import type { InboxSendOptions, RealtimeEngine, UserKey } from "@truss/core";
import type { ServerEventData, ServerEventName } from "@truss/protocol";
import type { ErpCatalog, Notification } from "./catalog.js";
import { newId } from "./data/ids.js";

/** Where a failed send is reported: Fastify's (pino's) `request.log`, or `console`. */
export interface WarningLogger {
  /** Logs a warning with its context. */
  warn(context: object, message: string): void;
}

/** A new notification for a user's list. */
export function notification(kind: Notification["kind"], title: string, body: string, now: number = Date.now()): Notification {
  return { id: newId("n"), kind, title, body, createdAt: now };
}

/**
 * Sends an event to every device of a company's user through their inbox.
 *
 * The database change that caused it has already committed, so a failure
 * here (the inbox store is down) must not turn a successful request into an
 * error: it is logged, and the function reports whether the message was
 * stored. `options.idempotencyKey` makes a repeated send store nothing new.
 */
export async function sendToUser<E extends ServerEventName<ErpCatalog>>(
  realtime: RealtimeEngine<ErpCatalog>,
  log: WarningLogger,
  user: UserKey,
  event: E,
  data: ServerEventData<ErpCatalog, E>,
  options?: InboxSendOptions,
): Promise<boolean> {
  try {
    await realtime.toUser(user.companyId, user.userId).emit(event, data, options);
    return true;
  } catch (error) {
    log.warn({ err: error, ...user, event }, "could not queue a user message; the change itself is saved");
    return false;
  }
}
