// Keeps the app's files for a phone without signal: network first (a new build shows on reload), the cache when offline.
// The API and the Truss socket are never cached: the outbox and the client's own stores carry the data.
const CACHE = "site-app-v1";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin || url.pathname.startsWith("/api/") || url.pathname.startsWith("/socket.io/")) return;
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      try {
        const response = await fetch(event.request);
        if (response.ok) await cache.put(event.request, response.clone());
        return response;
      } catch (error) {
        // `ignoreVary`: a module script is asked for with an Origin header the cached copy was not.
        const cached = await cache.match(event.request, { ignoreSearch: true, ignoreVary: true });
        if (cached) return cached;
        throw error;
      }
    })(),
  );
});
