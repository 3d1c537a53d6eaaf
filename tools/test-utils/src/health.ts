import assert from "node:assert/strict";

/** The error a store "down" by {@link switchableStore} reports. */
export const UNREACHABLE = "connect ECONNREFUSED 127.0.0.1:6379";

/** Gives a store a `ping` that fails once `takeDown()` is called, as a store whose server went away. */
export function switchableStore<T extends object>(store: T): { store: T & { ping(): Promise<void> }; takeDown(): void } {
  let up = true;
  return {
    store: Object.assign(store, { ping: () => (up ? Promise.resolve() : Promise.reject(new Error(UNREACHABLE))) }),
    takeDown: () => {
      up = false;
    },
  };
}

/**
 * Asserts what every framework adapter's health route must do: 200 with the
 * report (one connection, every store up, not cached) while `storeName` is up,
 * then 503 naming it down once `takeDown()` ran, without the store's error
 * text (it names hosts and roles; the route is public).
 */
export async function expectHealthRouteFollows(
  url: string,
  storeName: "presence" | "inbox" | "documents" | "streams",
  takeDown: () => void,
  path = "/health/websocket",
): Promise<void> {
  const healthy = await fetch(`${url}${path}`);
  assert.equal(healthy.status, 200);
  assert.match(healthy.headers.get("content-type") ?? "", /^application\/json/);
  assert.equal(healthy.headers.get("cache-control"), "no-store");
  const report = (await healthy.json()) as { status: string; connections: number; stores: Record<string, { state: string }> };
  assert.equal(report.status, "ok");
  assert.equal(report.connections, 1);
  assert.deepEqual(Object.fromEntries(Object.entries(report.stores).map(([name, s]) => [name, s.state])), {
    presence: "up",
    inbox: "up",
    documents: "up",
    streams: "up",
    revocations: "up",
  });

  takeDown();
  const degraded = await fetch(`${url}${path}`);
  assert.equal(degraded.status, 503);
  const down = (await degraded.json()) as { status: string; stores: Record<string, { state: string; error?: string }> };
  assert.equal(down.status, "degraded");
  assert.deepEqual(down.stores[storeName], { state: "down" });
  assert.ok(!JSON.stringify(down).includes(UNREACHABLE), "the store's error text stays off the public route");
}
