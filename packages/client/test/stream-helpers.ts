import { memoryStreamStore, type StreamStore } from "@truss/core";
import { waitFor, type TcpProxy } from "@truss/test-utils";
import type { KeyValueStorage, StreamResync, TrussClient } from "@truss/client";

/** What a test broadcasts: a counter, so order and duplicates show at a glance. */
export interface Numbered {
  n: number;
}

/** Every `n` a client's app is handed for `event`, in order. */
export function numbers(client: TrussClient, event: string): number[] {
  const received: number[] = [];
  client.on(event, (data) => void received.push((data as Numbered).n));
  return received;
}

/** Every resync a client reports. */
export function resyncs(client: TrussClient): StreamResync[] {
  const reported: StreamResync[] = [];
  client.onResync((resync) => reported.push(resync));
  return reported;
}

/** Every change of `client.recovering`. */
export function recoveries(client: TrussClient): boolean[] {
  const changes: boolean[] = [];
  client.onRecovering((recovering) => changes.push(recovering));
  return changes;
}

/** `from`, `from + 1`, … `to`. */
export const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, index) => from + index);

/** Waits until `received` holds `count` numbers. */
export function waitForCount(received: readonly number[], count: number, timeoutMs = 10_000): Promise<unknown> {
  return waitFor(() => received.length >= count, { timeoutMs, message: `${count} messages (have ${received.length})` });
}

/**
 * Cuts every connection through the proxy, as a dropped network would, and
 * holds the client's reconnections unanswered while `meanwhile` runs; then
 * lets them through.
 */
export async function whileCut(proxy: TcpProxy, meanwhile: () => Promise<void>): Promise<void> {
  proxy.hold();
  proxy.cut();
  try {
    await meanwhile();
  } finally {
    proxy.release();
  }
}

/**
 * A memory stream store that counts the engine's `stream:read` lookups (not
 * the entry-less reads of a stream's start) and
 * can lose its history on `restart()`, as a store process restarted empty.
 */
export function countingStreamStore(options: Parameters<typeof memoryStreamStore>[0] = {}): StreamStore & { reads: number; restart(): void } {
  let store = memoryStreamStore(options);
  const counting = {
    reads: 0,
    append: (...args: Parameters<StreamStore["append"]>) => store.append(...args),
    read: (...args: Parameters<StreamStore["read"]>) => {
      // A stream's start (where it stands when a socket joins it) reads no entries; only reads of entries count.
      if (args[2] > 0) counting.reads += 1;
      return store.read(...args);
    },
    trimmed: () => store.trimmed(),
    restart: () => void (store = memoryStreamStore(options)),
  };
  return counting;
}

/** A `localStorage` stand-in whose contents outlive the store instances over it, as a page reload's would. */
export function fakeStorage(): KeyValueStorage & { items: Map<string, string> } {
  const items = new Map<string, string>();
  return { items, getItem: (key) => items.get(key) ?? null, setItem: (key, value) => void items.set(key, value) };
}
