/**
 * A wall clock with sub-millisecond resolution that two processes on one
 * machine agree on: `performance.timeOrigin` is the wall time at which each
 * process's monotonic clock started. `Date.now()` would do, at 1 ms
 * resolution; `process.hrtime()` would not, its origin is per process.
 */
export const now = () => performance.timeOrigin + performance.now();

/** Resolves after `ms` milliseconds. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
