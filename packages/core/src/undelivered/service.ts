import { setMaxListeners } from "node:events";
import type { EngineContext } from "../kernel/context.js";
import { storeCall } from "../kernel/failures.js";
import type { EnginePart } from "../kernel/lifecycle.js";
import { isStoredMessage, isUserKey, type InboxStore, type UndeliveredClaim, type UndeliveredOutcome } from "../inbox/store.js";
import type { PresenceStore } from "../presence/store.js";
import { MAX_UNDELIVERED_BACKOFF_MS, type ResolvedUndeliveredOptions } from "./options.js";
import { messageOf } from "../kernel/errors.js";

/** The inbox store's undelivered capability. */
type UndeliveredStore = Required<Pick<InboxStore, "claimUndelivered" | "settleUndelivered">>;

/** Longest `close()` waits for handler calls in progress; a call still running then is left to its lease. */
const CLOSE_WAIT_MS = 5_000;

/**
 * Calls the `undelivered` handler for due calls: it claims as many due calls
 * as it has room for (`concurrency`), leases them in the inbox store, calls
 * the handler with a timeout, and settles each: done, retried after a
 * backoff, or given up after `maxAttempts` (logged once, counted). It claims
 * every `pollIntervalMs`, and sooner while the last claim came back full
 * (more calls may be due) and a slot frees, so a backlog drains as fast as
 * the handler takes it. A handler that throws or hangs costs one of its
 * slots until `timeoutMs`, never the engine or the inbox; the store being
 * down is logged once per outage and tried again at the next poll.
 */
export class UndeliveredCalls implements EnginePart {
  private readonly running = new Set<Promise<void>>();
  private readonly closing = new AbortController();
  private loop: Promise<void> | undefined;
  private outage = false;
  /** Whether the last claim came back full: more calls may be due than there was room for. */
  private moreDue = false;
  /** A slot freed while more calls may be due: the loop claims in the next turn instead of at the next poll. */
  private claimSoon = false;
  /** Ends the loop's pause early; set while it pauses. */
  private wake: (() => void) | undefined;

  constructor(
    private readonly ctx: Pick<EngineContext, "metrics" | "logger" | "storeDeadlines">,
    private readonly store: UndeliveredStore,
    private readonly presence: Pick<PresenceStore, "deviceIds">,
    private readonly options: ResolvedUndeliveredOptions,
  ) {
    // Each running call listens on it until it settles: past ten at once, Node would warn of a leak that is not one.
    setMaxListeners(0, this.closing.signal);
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.closing.abort();
    const finished = Promise.allSettled([this.loop, ...this.running]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([finished, new Promise((resolve) => (timer = setTimeout(resolve, Math.min(CLOSE_WAIT_MS, this.options.timeoutMs))))]);
    clearTimeout(timer);
  }

  /** Claims, then pauses for a poll (or less, see {@link claimSoon}), until the engine closes. */
  private async run(): Promise<void> {
    await this.pause(0);
    while (!this.closing.signal.aborted) {
      await this.claimDue();
      await this.pause(this.options.pollIntervalMs);
    }
  }

  /** Resolves after `delayMs`, at close, or in the next turn once a slot frees while more calls may be due. */
  private pause(delayMs: number): Promise<void> {
    const { signal } = this.closing;
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.wake = undefined;
        resolve();
      };
      let timer = setTimeout(done, this.claimSoon ? 0 : delayMs);
      timer.unref();
      // In the next turn rather than at once, so slots that free together share one claim.
      this.wake = () => {
        this.wake = undefined;
        clearTimeout(timer);
        timer = setTimeout(done, 0);
        timer.unref();
      };
      signal.addEventListener("abort", done, { once: true });
      if (signal.aborted) done();
    });
  }

  /** A call settled and gave its slot back. */
  private freed(): void {
    if (!this.moreDue) return;
    this.claimSoon = true;
    this.wake?.();
  }

  /** Claims while there is room and the last claim came back full, and starts each claim's call. */
  private async claimDue(): Promise<void> {
    const { concurrency, leaseMs } = this.options;
    try {
      for (;;) {
        // This room counts every slot freed so far.
        this.claimSoon = false;
        const room = concurrency - this.running.size;
        if (room <= 0 || this.closing.signal.aborted) return;
        const claims = await storeCall(this.ctx, "inbox", "claimUndelivered", () => this.store.claimUndelivered(room, leaseMs));
        this.outage = false;
        this.moreDue = claims.length >= room;
        // Nothing more was due at the claim: slots freed meanwhile wait for the poll.
        if (!this.moreDue) this.claimSoon = false;
        // Claimed as the engine began closing: left to their lease, for another node (or this one, restarted).
        if (this.closing.signal.aborted) return;
        for (const claim of claims) {
          // A claim the engine cannot use (a contributed store's bug) rejects; logged, never left unhandled, which would end the process.
          const call = this.call(claim)
            .catch((error: unknown) => this.ctx.logger.error("an undelivered call could not be made; it is left to its lease", { error: messageOf(error) }))
            .finally(() => {
              this.running.delete(call);
              this.freed();
            });
          this.running.add(call);
        }
        if (!this.moreDue) return;
      }
    } catch (error) {
      this.moreDue = false;
      this.claimSoon = false;
      if (!this.outage) this.ctx.logger.warn("undelivered calls could not be claimed; trying again at each poll", { error: messageOf(error) });
      this.outage = true;
    }
  }

  /** One claimed call: the handler, then its settlement. Rejects only for a claim it cannot use, before the handler. */
  private async call(claim: UndeliveredClaim): Promise<void> {
    if (!isUsableClaim(claim)) {
      throw new TypeError("the inbox store's claimUndelivered answered a claim without its user, message or attempt; update it to the UndeliveredClaim contract.");
    }
    const { user, message, attempt } = claim;
    const { maxAttempts } = this.options;
    if (attempt > maxAttempts) {
      // Every earlier claim's lease ran out unsettled (its node died mid-call).
      return this.giveUp(claim, `its last ${maxAttempts} claims were never settled (their nodes stopped mid-call)`);
    }
    this.ctx.metrics.inc("truss_undelivered_calls_total");
    this.ctx.metrics.observe("truss_undelivered_delay_seconds", undefined, Math.max(0, Date.now() - message.ts) / 1000);
    const devicesOnline = await storeCall(this.ctx, "presence", "deviceIds", () => this.presence.deviceIds(user.companyId, user.userId)).then(
      (ids) => ids.length,
      () => 0,
    );
    try {
      // A copy: the claim settles by its message's id, which a handler that changes what it is given must not move.
      const given = { ...message };
      await this.withTimeout((signal) => this.options.handler({ companyId: user.companyId, userId: user.userId, message: given, devicesOnline, attempt, signal }));
    } catch (error) {
      // Cut short by close(): left to its lease, so another node makes it.
      if (this.closing.signal.aborted) return;
      if (attempt >= maxAttempts) return this.giveUp(claim, messageOf(error));
      this.ctx.metrics.inc("truss_undelivered_outcomes_total", { outcome: "retried" });
      const retryAfterMs = Math.min(this.options.backoffMs * 2 ** (attempt - 1), MAX_UNDELIVERED_BACKOFF_MS);
      return this.settle(claim, { retryAfterMs });
    }
    this.ctx.metrics.inc("truss_undelivered_outcomes_total", { outcome: "delivered" });
    return this.settle(claim, "done");
  }

  private giveUp(claim: UndeliveredClaim, reason: string): Promise<void> {
    this.ctx.metrics.inc("truss_undelivered_outcomes_total", { outcome: "given_up" });
    this.ctx.logger.error("undelivered call given up", {
      companyId: claim.user.companyId,
      userId: claim.user.userId,
      id: claim.message.id,
      event: claim.message.event,
      attempts: claim.attempt,
      error: reason,
    });
    return this.settle(claim, "done");
  }

  /** A settlement that fails leaves the call to its lease: made again, never lost. */
  private async settle(claim: UndeliveredClaim, outcome: UndeliveredOutcome): Promise<void> {
    try {
      await storeCall(this.ctx, "inbox", "settleUndelivered", () => this.store.settleUndelivered(claim, outcome));
    } catch (error) {
      this.ctx.logger.warn("an undelivered call could not be settled; it will be made again after its lease", { id: claim.message.id, error: messageOf(error) });
    }
  }

  /** Runs the handler with a signal aborted at `timeoutMs` or at close; rejects on either. */
  private async withTimeout(run: (signal: AbortSignal) => unknown): Promise<void> {
    const { timeoutMs } = this.options;
    const controller = new AbortController();
    const abort = () => controller.abort(new Error("the engine closed during the call"));
    this.closing.signal.addEventListener("abort", abort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new Error(`the handler did not settle within ${timeoutMs} ms`);
        controller.abort(error);
        reject(error);
      }, timeoutMs);
      timer.unref();
      controller.signal.addEventListener("abort", () => reject(controller.signal.reason), { once: true });
    });
    try {
      await Promise.race([Promise.resolve().then(() => run(controller.signal)), timedOut]);
    } finally {
      clearTimeout(timer);
      this.closing.signal.removeEventListener("abort", abort);
    }
  }
}

/** Whether a store's claim has what a call needs: its user, its stored message, and its attempt. */
function isUsableClaim(claim: UndeliveredClaim | null | undefined): boolean {
  const { user, message, attempt } = claim ?? {};
  return isUserKey(user) && isStoredMessage(message) && typeof attempt === "number" && Number.isInteger(attempt) && attempt >= 1;
}
