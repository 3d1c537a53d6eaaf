// @ts-check
/// <reference lib="webworker" />
/**
 * The dashboard's service worker: it keeps the page's shell (the HTML, the
 * stylesheet and the script) so that a reload without the network still
 * shows the dashboard. It handles those three files and nothing else: API
 * calls, the Truss socket and everything else go to the network untouched,
 * so an API answer is never served stale from here (the panels keep their
 * own offline copy, see `web/offline-cache.ts`).
 *
 * Network first: online, every reload gets the files as served now (and
 * refreshes the copy); offline, or when the server does not answer within
 * a few seconds, the copy from the last visit is served.
 *
 * It also shows the server's Web Push notifications: a message none of the
 * user's devices took in time (see `web/push.ts`), even with every tab of
 * the dashboard closed. A click focuses a dashboard tab, or opens one.
 */
const sw = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self));

const CACHE = "erp-shell-v1";
const SHELL = ["/", "/assets/dashboard.css", "/assets/dashboard.js"];
/** How long a shell file may take from the network before the cached copy is served instead. */
const NETWORK_TIMEOUT_MS = 3000;

sw.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => sw.skipWaiting()),
  );
});

sw.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
      // Controls the page that registered it too, so a reload right after the first visit already works offline.
      await sw.clients.claim();
    })(),
  );
});

sw.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== sw.location.origin || !SHELL.includes(url.pathname)) return;
  event.respondWith(networkFirst(request, url.pathname));
});

sw.addEventListener("push", (event) => {
  /** @type {{ title?: string; body?: string; tag?: string; url?: string }} */
  let payload = {};
  try {
    payload = event.data?.json() ?? {};
  } catch {
    payload = { body: event.data?.text() };
  }
  // The tag is the message's id: a push repeated for the same message replaces the notification.
  const options = { body: payload.body ?? "", data: { url: payload.url ?? "/" }, ...(payload.tag ? { tag: payload.tag } : {}) };
  event.waitUntil(sw.registration.showNotification(payload.title ?? "Construction ERP", options));
});

sw.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = new URL(event.notification.data?.url ?? "/", sw.location.origin).href;
  event.waitUntil(
    (async () => {
      for (const client of await sw.clients.matchAll({ type: "window" })) {
        if (new URL(client.url).origin === sw.location.origin) return void (await client.focus());
      }
      await sw.clients.openWindow(url);
    })(),
  );
});

/**
 * @param {Request} request
 * @param {string} path - the cache key: the path without the query string
 * @returns {Promise<Response>}
 */
async function networkFirst(request, path) {
  const cache = await caches.open(CACHE);
  try {
    const response = await withTimeout(fetch(request), NETWORK_TIMEOUT_MS);
    if (response.ok) await cache.put(path, response.clone());
    return response;
  } catch {
    const cached = await cache.match(path);
    return cached ?? new Response("Offline, and this page was not saved for offline use yet.", { status: 503, headers: { "content-type": "text/plain; charset=utf-8" } });
  }
}

/**
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @returns {Promise<T>}
 */
function withTimeout(promise, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
