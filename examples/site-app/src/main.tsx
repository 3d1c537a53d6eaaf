import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App.js";
import "./site.css";

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);

// The service worker serves the app's files from its cache when there is no signal; the page fills that cache with
// what it loaded, so the app opens again on site after its first visit.
if (import.meta.env.PROD && "serviceWorker" in navigator) {
  void navigator.serviceWorker.register("/sw.js").then(async () => {
    await navigator.serviceWorker.ready;
    const loaded = Array.from(document.querySelectorAll<HTMLScriptElement | HTMLLinkElement>("script[src], link[rel=stylesheet]"), (node) => ("src" in node ? node.src : node.href));
    const files = ["/", ...loaded];
    await (await caches.open("site-app-v1")).addAll(files);
    document.body.dataset.offlineReady = "true";
  });
}
