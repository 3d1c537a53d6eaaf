/**
 * What the ERP does with a message no device of its user took in time (the
 * engine's `undelivered` hook): a Web Push notification to each browser the
 * user registered, or, when they registered none (or the push services say
 * all are gone), an e-mail. Either way one row of `notifications_sent`
 * records it, which the dashboard lists ("e-mailed to Chloe Park, 09:42:
 * Expense rejected").
 *
 * @module
 */
import type { UndeliveredCall, UndeliveredOptions } from "@truss/core";
import { notificationSchema } from "./catalog.js";
import type { NotificationChannel } from "./data/index.js";
import type { ErpData } from "./store/types.js";
import type { PushSender } from "./web-push.js";

/** How long a message waits for a device of its user before it is pushed or e-mailed, by default: one minute. */
export const DEFAULT_UNDELIVERED_AFTER_MS = 60_000;

/** Options of {@link erpUndelivered}. */
export interface ErpUndeliveredOptions {
  /** Where subscriptions and the sent-notifications log live. */
  data: Pick<ErpData, "pushSubscriptions" | "notificationsSent">;
  /** Sends Web Push notifications. */
  push: PushSender;
  /** See {@link DEFAULT_UNDELIVERED_AFTER_MS}. */
  afterMs?: number | undefined;
  /** How often each node looks for due calls, in ms (the engine's default: 1 s). */
  pollIntervalMs?: number | undefined;
  /** The clock, in epoch ms. */
  now?: () => number;
}

/**
 * The engine's `undelivered` option for the ERP: every `toUser` message
 * after `afterMs`, unless its send says otherwise. Each decision sends its
 * data (`expense:approved`, `expense:rejected`, `task:assigned`: the expense
 * or task, for the lists) with `{ undelivered: false }`, beside a
 * `notification:new` that says the same in a sentence: only the sentence is
 * pushed or e-mailed, so nobody gets two for one decision.
 */
export function erpUndelivered(options: ErpUndeliveredOptions): UndeliveredOptions {
  return {
    afterMs: options.afterMs ?? DEFAULT_UNDELIVERED_AFTER_MS,
    ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }),
    handler: missedMessageHandler(options),
  };
}

/**
 * The handler itself. The engine calls it at least once per message (again
 * after a failure, or when a node died mid-call), so a message that already
 * has its row is skipped; the push's `tag` and `Topic` are the message id,
 * so a push repeated before its row was written replaces the first instead
 * of showing twice. A push service that fails otherwise (5xx, unreachable)
 * makes the call throw, and the engine tries again later.
 */
export function missedMessageHandler({ data, push, now = Date.now }: ErpUndeliveredOptions): (call: UndeliveredCall) => Promise<void> {
  return async ({ companyId, userId, message }) => {
    if (await data.notificationsSent.has(companyId, userId, message.id)) return;
    const { title, body } = describe(message.event, message.data);
    let channel: NotificationChannel = "email";
    for (const subscription of await data.pushSubscriptions.list(companyId, userId)) {
      const outcome = await push.send(subscription, { title, body, tag: message.id, url: "/" });
      if (outcome === "sent") channel = "push";
      else await data.pushSubscriptions.remove(companyId, userId, subscription.endpoint);
    }
    // With no browser to push to, the row is the e-mail: a real mailer would send it once this insert won.
    await data.notificationsSent.record(companyId, { userId, channel, event: message.event, summary: title, sentAt: now(), messageId: message.id });
  };
}

/** The title and text of a missed message: a notification's own, or the event's name for anything else. */
function describe(event: string, payload: unknown): { title: string; body: string } {
  const parsed = notificationSchema.safeParse(payload);
  if (event === "notification:new" && parsed.success) return { title: parsed.data.title, body: parsed.data.body };
  return { title: event, body: "Open the dashboard to see it." };
}
