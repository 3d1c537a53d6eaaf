import { withinDeadline } from "@truss/protocol";

/**
 * A set of callbacks with `add` returning its own unsubscribe function. A
 * callback that throws (or rejects) does not stop the others: the failure goes
 * to `onFailure`, so one broken UI widget cannot stall the connection.
 */
export class Listeners<TArgs extends unknown[]> {
  private readonly callbacks = new Set<(...args: TArgs) => unknown>();

  constructor(private readonly onFailure: (error: unknown) => void) {}

  /** Registers `callback`; call the returned function to remove it. */
  add(callback: (...args: TArgs) => unknown): () => void {
    if (typeof callback !== "function") throw new TypeError("Expected a callback function.");
    // Wrapping makes each registration distinct, so adding one function twice and removing one keeps the other.
    const entry = (...args: TArgs) => callback(...args);
    this.callbacks.add(entry);
    return () => void this.callbacks.delete(entry);
  }

  /** How many callbacks are registered. */
  get size(): number {
    return this.callbacks.size;
  }

  /** Calls every callback without waiting for async ones. */
  emit(...args: TArgs): void {
    for (const callback of [...this.callbacks]) {
      try {
        const result = callback(...args);
        if (isPromiseLike(result)) result.then(undefined, this.onFailure);
      } catch (error) {
        this.onFailure(error);
      }
    }
  }

  /**
   * Calls every callback and resolves when all have settled, or `timeoutMs`
   * passed (a callback that never settles must not hold up what waits on it);
   * failures, and callbacks past the time, go to `onFailure`.
   */
  async emitAndWait(timeoutMs: number, ...args: TArgs): Promise<void> {
    await Promise.all(
      [...this.callbacks].map(async (callback) => {
        try {
          await withinDeadline(callback(...args), timeoutMs);
        } catch (error) {
          this.onFailure(error);
        }
      }),
    );
  }

  /** Removes every callback. */
  clear(): void {
    this.callbacks.clear();
  }
}

/** Whether a value is a promise or another thenable: a listener's or a store's answer that may still fail. */
export function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | null | undefined)?.then === "function";
}
