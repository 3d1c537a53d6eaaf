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
 * one. What comes after that, a value or a failure, is dropped (never left
 * unhandled): the work it stands for may still finish, so a caller that gives
 * up on a write says its outcome is not confirmed.
 */
export function withinDeadline<T>(answer: T | PromiseLike<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new DeadlineExceeded(ms)), ms);
    // Promise.resolve takes whatever was answered (a value, a thenable whose `then` throws) without throwing here.
    Promise.resolve(answer).then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
