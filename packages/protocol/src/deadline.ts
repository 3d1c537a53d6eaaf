/**
 * Waiting a bounded time for code one does not control, in one way for the
 * server and the client: on the server a store, the application's
 * authenticator, policy or handler; in `@truss/client` the app's `getToken`,
 * its local stores, `onConflict` and inbox handlers. A promise that never
 * settles would otherwise hold a request, a handshake, a reconnection or a
 * queue behind it for good.
 */

/** What {@link withinDeadline} rejects with once its time is up, so a caller can tell no answer from a failure. */
export class DeadlineExceeded extends Error {
  constructor(readonly ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = "DeadlineExceeded";
  }
}

/**
 * `answer`, or a rejection with {@link DeadlineExceeded} once `ms` pass without
 * one. A value that comes after that goes to `late`, if given (the work it
 * stands for finished after all: a write that landed may still be announced);
 * a late failure, and anything `late` throws, is dropped, never left
 * unhandled. A caller that gives up on a write says its outcome is not
 * confirmed.
 */
export function withinDeadline<T>(answer: T | PromiseLike<T>, ms: number, late?: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      reject(new DeadlineExceeded(ms));
    }, ms);
    // Promise.resolve takes whatever was answered (a value, a thenable whose `then` throws) without throwing here.
    Promise.resolve(answer).then(
      (value) => {
        clearTimeout(timer);
        if (!expired) resolve(value);
        else if (late !== undefined) {
          try {
            late(value);
          } catch {
            // `late` handles its own failures; one that escapes has nowhere to go.
          }
        }
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
