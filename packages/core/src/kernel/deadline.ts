/**
 * Waiting for code the engine does not control (a store, the application's
 * authenticator, policy or handler) for a bounded time, in one way: a promise
 * that never settles would otherwise hold the request, the handshake or the
 * scrape waiting on it for good.
 */

const inProcess = new WeakSet<object>();

/**
 * Marks code of the engine's own that answers in this process and cannot hang
 * (the in-memory stores, `jwtAuth` without a claims function): its calls are
 * not raced against a deadline, which would cost each a `Timeout` and a
 * promise on the hot paths. A copy or a wrapper of it is not marked, so it is
 * bounded like any other.
 */
export function markInProcess<T extends object>(answerer: T): T {
  inProcess.add(answerer);
  return answerer;
}

/** Whether {@link markInProcess} marked `answerer`. */
export function answersInProcess(answerer: object): boolean {
  return inProcess.has(answerer);
}

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
