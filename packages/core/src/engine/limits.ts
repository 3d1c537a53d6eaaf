import type { IncomingMessage } from "node:http";

/**
 * Whether a handshake's Origin may connect. Requests without an Origin header
 * come from non-browser clients, which cannot be ridden by a foreign page, so
 * they pass; a browser always sends one on cross-site WebSocket and CORS
 * requests.
 */
export function isOriginAllowed(origin: string | undefined, allowed: ReadonlySet<string> | null): boolean {
  if (allowed === null || origin === undefined) return true;
  return allowed.has(origin);
}

/** Reads the Origin header of a raw request. */
export function originOf(request: Pick<IncomingMessage, "headers">): string | undefined {
  const origin = request.headers.origin;
  return Array.isArray(origin) ? origin[0] : origin;
}

/**
 * A token bucket: `capacity` events at once, refilled at `perSecond`. One per
 * socket; `take` is O(1) and allocation-free, since it runs for every event.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    readonly perSecond: number,
    now = Date.now(),
  ) {
    this.tokens = perSecond;
    this.updatedAt = now;
  }

  /** Takes one token; `false` when the budget is spent. */
  take(now = Date.now()): boolean {
    const elapsed = now - this.updatedAt;
    if (elapsed > 0) {
      this.tokens = Math.min(this.perSecond, this.tokens + (elapsed * this.perSecond) / 1000);
      this.updatedAt = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** The byte length of an Engine.IO packet's payload as it arrived. */
export function packetBytes(data: unknown): number {
  if (typeof data === "string") return Buffer.byteLength(data);
  if (data instanceof ArrayBuffer) return data.byteLength;
  if (ArrayBuffer.isView(data)) return data.byteLength;
  return 0;
}
