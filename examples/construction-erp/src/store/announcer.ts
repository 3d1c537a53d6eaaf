import type { OutboxTarget, OutboxUserEmitOptions } from "@truss/core";
import type { Announcer } from "./types.js";

/** One event an {@link Announcer} recorded, to be written to the outbox. */
export interface Announcement {
  target: OutboxTarget;
  event: string;
  data: unknown;
  /** The emit's options; `undelivered` only ever on a `toUser` one (the types keep it there, the outbox checks it). */
  options: OutboxUserEmitOptions | undefined;
}

/** An {@link Announcer} that records what it is told, in order, for the database to write in its transaction. */
export function recordingAnnouncer(): { out: Announcer; announcements: Announcement[] } {
  const announcements: Announcement[] = [];
  const emitterFor = (target: OutboxTarget) => ({
    emit(event: string, data: unknown, options?: OutboxUserEmitOptions) {
      announcements.push({ target, event, data, options });
    },
  });
  return {
    announcements,
    out: {
      toUser: (companyId, userId) => emitterFor({ kind: "user", companyId, userId }),
      toTopic: (companyId, topic) => emitterFor({ kind: "topic", companyId, topic }),
    },
  };
}
