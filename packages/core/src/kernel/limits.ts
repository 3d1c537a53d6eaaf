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
 * A token bucket: `capacity` tokens at once, refilled at `perSecond`. `has`
 * and `spend` are O(1) and allocation-free, since they run for every event;
 * they are apart so an event checked against several buckets spends from
 * none of them when one refuses it.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    readonly perSecond: number,
    readonly capacity = perSecond,
    now = Date.now(),
  ) {
    this.tokens = capacity;
    this.updatedAt = now;
  }

  /** Whether `cost` tokens are there now. */
  has(cost = 1, now = Date.now()): boolean {
    const elapsed = now - this.updatedAt;
    if (elapsed > 0) {
      this.tokens = Math.min(this.capacity, this.tokens + (elapsed * this.perSecond) / 1000);
      this.updatedAt = now;
    }
    return this.tokens >= cost;
  }

  /** Spends `cost` tokens that {@link has} just found. */
  spend(cost = 1): void {
    this.tokens -= cost;
  }

  /** How long until the bucket is full again, in ms. */
  msUntilFull(now = Date.now()): number {
    this.has(0, now);
    return Math.ceil(((this.capacity - this.tokens) * 1000) / this.perSecond);
  }
}

/** What all of one user's sockets on this node may send together. */
export interface UserBudgetLimits {
  /** Events a second, over all the user's sockets here (a bucket of that size). */
  eventsPerSecond: number;
  /** Bytes of packets a second, over all the user's sockets here. */
  bytesPerSecond: number;
  /** The byte bucket's size: at least the largest event, which could never pass otherwise. */
  bytesCapacity: number;
}

/** One user's shared budgets on this node, and how many of their sockets use them. */
export class UserBudget {
  readonly events: TokenBucket;
  readonly bytes: TokenBucket;
  sockets = 0;
  /** Set while no socket uses the budget: drops it once it has refilled. */
  expiry: NodeJS.Timeout | undefined;

  constructor(limits: UserBudgetLimits) {
    this.events = new TokenBucket(limits.eventsPerSecond);
    this.bytes = new TokenBucket(limits.bytesPerSecond, limits.bytesCapacity);
  }
}

/**
 * The per-user budgets of this node, by user key. A budget lives while the
 * user has a socket here, and after their last socket goes only until it has
 * refilled (a second or so at the defaults): a full budget is the same as a
 * fresh one, while dropping a spent one would let a user buy a new budget by
 * reconnecting. So memory holds the users connected here plus those who left
 * a spent budget within the last refill time.
 */
export class UserBudgets {
  private readonly budgets = new Map<string, UserBudget>();

  constructor(private readonly limits: UserBudgetLimits) {}

  /** The budget of `userKey` for one more of their sockets. */
  acquire(userKey: string): UserBudget {
    let budget = this.budgets.get(userKey);
    if (!budget) {
      budget = new UserBudget(this.limits);
      this.budgets.set(userKey, budget);
    }
    clearTimeout(budget.expiry);
    budget.expiry = undefined;
    budget.sockets += 1;
    return budget;
  }

  /** Gives back one socket's use of `budget`; the last one lets it go once refilled. */
  release(userKey: string, budget: UserBudget): void {
    budget.sockets -= 1;
    // After `clear()` the budget is no longer held; no timer may outlive it.
    if (budget.sockets > 0 || this.budgets.get(userKey) !== budget) return;
    const wait = Math.max(budget.events.msUntilFull(), budget.bytes.msUntilFull());
    if (wait <= 0) {
      this.budgets.delete(userKey);
      return;
    }
    budget.expiry = setTimeout(() => {
      if (budget.sockets === 0 && this.budgets.get(userKey) === budget) this.budgets.delete(userKey);
    }, wait).unref();
  }

  /** How many users have a budget here. */
  get size(): number {
    return this.budgets.size;
  }

  /** Drops every budget and its timer, at shutdown. */
  clear(): void {
    for (const budget of this.budgets.values()) clearTimeout(budget.expiry);
    this.budgets.clear();
  }
}

/** The byte length of an Engine.IO packet's payload as it arrived. */
export function packetBytes(data: unknown): number {
  if (typeof data === "string") return Buffer.byteLength(data);
  if (data instanceof ArrayBuffer) return data.byteLength;
  if (ArrayBuffer.isView(data)) return data.byteLength;
  return 0;
}
