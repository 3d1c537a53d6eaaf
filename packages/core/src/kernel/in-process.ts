/**
 * Code of the engine's own that answers in this process and cannot hang (the
 * in-memory stores, `jwtAuth` reading claims by name): the engine does not
 * race its calls against a deadline (`withinDeadline`, from `@truss/protocol`),
 * which would cost each a `Timeout` and a promise on the hot paths.
 */

const inProcess = new WeakSet<object>();

/** Marks `answerer` as answering in process. A copy or a wrapper of it is not marked, so it is bounded like any other. */
export function markInProcess<T extends object>(answerer: T): T {
  inProcess.add(answerer);
  return answerer;
}

/** Whether {@link markInProcess} marked `answerer`. */
export function answersInProcess(answerer: object): boolean {
  return inProcess.has(answerer);
}
