import type { Socket } from "socket.io";
import type { Principal } from "../auth/authenticator.js";
import { TokenBucket } from "./limits.js";

/**
 * What the engine keeps for one live socket on this node. Held in a Map by
 * socket id rather than in `socket.data`, which the Redis adapter would
 * serialise across nodes.
 */
export class Connection {
  /** Size of the last packet the socket sent, set before the event is dispatched. */
  lastPacketBytes = 0;
  /** The per-socket event budget. */
  readonly bucket: TokenBucket;
  /** When the last "rate limited" notice went out, to send at most one a second. */
  lastRateNoticeAt = 0;
  /** `auth:expiring` timer. */
  warnTimer: NodeJS.Timeout | undefined;
  /** Disconnect-at-expiry timer. */
  expiryTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly socket: Socket,
    public principal: Principal,
    eventsPerSecond: number,
  ) {
    this.bucket = new TokenBucket(eventsPerSecond);
  }

  /** Stops this connection's timers. */
  clearTimers(): void {
    clearTimeout(this.warnTimer);
    clearTimeout(this.expiryTimer);
    this.warnTimer = undefined;
    this.expiryTimer = undefined;
  }
}

/** A key for one device of one user, for local reference counts. */
export function deviceKey(principal: Pick<Principal, "companyId" | "userId" | "deviceId">): string {
  return JSON.stringify([principal.companyId, principal.userId, principal.deviceId]);
}
