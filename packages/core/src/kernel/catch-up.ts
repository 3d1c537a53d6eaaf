/**
 * Reading again what a node may have missed while its adapter's subscriber
 * was cut off (`ADAPTER_RESUBSCRIBED_EVENT`): every part that catches up
 * reads its store for many sockets or scopes at once, against a store that
 * may itself still be coming back.
 *
 * @module
 */

/** How many reads a catch-up runs at once: a node with tens of thousands of sockets does not meet a Redis that just came back with all their reads together. */
export const CATCH_UP_CONCURRENCY = 64;

/** Waits before reading again what could not be read (about 30 s in all): the store client reconnects on its own schedule. */
export const CATCH_UP_RETRY_DELAYS_MS: readonly number[] = [250, 500, 1000, 2000, 4000, 8000, 15000];

/** Reads one item; resolves whether it could. `final` is the last try's. */
export type CatchUpRead<T> = (item: T, final: boolean) => Promise<boolean>;

/** Runs `read` on every item, at most {@link CATCH_UP_CONCURRENCY} at once; resolves with those whose read failed. */
export async function readEach<T>(items: readonly T[], read: CatchUpRead<T>, final: boolean): Promise<T[]> {
  const failed: T[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      if (!(await read(item, final))) failed.push(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CATCH_UP_CONCURRENCY, items.length) }, worker));
  return failed;
}

/**
 * Reads again, after each of {@link CATCH_UP_RETRY_DELAYS_MS}, the items
 * whose read failed and that are `stillWanted`, until none fails; the last
 * try is `final`.
 */
export async function retryEach<T>(failed: readonly T[], read: CatchUpRead<T>, stillWanted: (item: T) => boolean): Promise<void> {
  let pending = failed;
  for (let attempt = 0; attempt < CATCH_UP_RETRY_DELAYS_MS.length && pending.length > 0; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, CATCH_UP_RETRY_DELAYS_MS[attempt]).unref());
    pending = await readEach(pending.filter(stillWanted), read, attempt === CATCH_UP_RETRY_DELAYS_MS.length - 1);
  }
}

/** {@link readEach} then {@link retryEach}: a whole catch-up. */
export async function catchUpEach<T>(items: readonly T[], read: CatchUpRead<T>, stillWanted: (item: T) => boolean): Promise<void> {
  await retryEach(await readEach(items, read, false), read, stillWanted);
}
