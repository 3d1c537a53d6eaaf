/**
 * What the dashboard remembers of the server, so that it renders without the
 * network: the last answer of each list it loaded over REST and the last
 * version of each site report it opened, in `localStorage`, per user.
 *
 * This is a read cache for showing something offline, never a source of
 * truth: every answer is fetched again once the server is reachable, and
 * nothing is written from it. Writes made offline wait in the Truss client's
 * outbox (IndexedDB), not here.
 */
import type { TrussClient } from "@truss/client";
import type { ErpCatalog } from "../src/catalog.js";
import { ApiError, type Api } from "./api.js";

const PREFIX = "erp:cache:";

/** One user's cached answers. */
export class OfflineCache {
  private readonly prefix: string;

  /** @param scope - whose cache: `companyId:userId`, so two people sharing a browser never see each other's. */
  constructor(
    scope: string,
    private readonly storage: Storage | undefined = globalThis.localStorage,
  ) {
    this.prefix = `${PREFIX}${scope}:`;
  }

  /** The cached value, or `undefined`. */
  get<T>(key: string): T | undefined {
    try {
      const raw = this.storage?.getItem(this.prefix + key);
      return raw === null || raw === undefined ? undefined : (JSON.parse(raw) as T);
    } catch {
      return undefined;
    }
  }

  /** Caches a value; a full storage only costs the offline copy. */
  set(key: string, value: unknown): void {
    try {
      this.storage?.setItem(this.prefix + key, JSON.stringify(value));
    } catch {
      // Quota exceeded or storage disabled: the dashboard still works online.
    }
  }

  /** Forgets one value. */
  delete(key: string): void {
    this.storage?.removeItem(this.prefix + key);
  }

  /** Forgets everything of this user (on logout). */
  clear(): void {
    if (!this.storage) return;
    const keys: string[] = [];
    for (let index = 0; index < this.storage.length; index++) {
      const key = this.storage.key(index);
      if (key?.startsWith(this.prefix)) keys.push(key);
    }
    for (const key of keys) this.storage.removeItem(key);
  }
}

/** Whether a failed API call never reached the server (offline, server down), as opposed to an answer. */
export function isNetworkFailure(error: unknown): boolean {
  return !(error instanceof ApiError);
}

/**
 * Loads `GET /api{path}` for a panel that must also render offline:
 * `show(cached, true)` runs at once with the cached answer if there is one,
 * then `show(fresh, false)` with the server's. When the server cannot be
 * reached, the request is made again on each reconnection of `client` until
 * it succeeds (an answer shown from the cache would otherwise stay stale).
 *
 * @returns the first data shown (cached or fresh); rejects when there was
 * neither, or when the server refused the request.
 */
export async function cachedGet<T>(
  { api, cache, client }: { api: Api; cache: OfflineCache; client: TrussClient<ErpCatalog> },
  path: string,
  show: (data: T, cached: boolean) => void,
): Promise<T> {
  const cached = cache.get<T>(path);
  if (cached !== undefined) show(cached, true);
  const fetchFresh = async () => {
    const fresh = await api<T>(path);
    cache.set(path, fresh);
    show(fresh, false);
    return fresh;
  };
  try {
    return await fetchFresh();
  } catch (error) {
    if (!isNetworkFailure(error)) throw error;
    let busy = false;
    const stop = client.onStatus((status) => {
      if (status !== "connected" || busy) return;
      busy = true;
      fetchFresh().then(
        () => stop(),
        () => (busy = false),
      );
    });
    if (cached === undefined) throw error;
    return cached;
  }
}
