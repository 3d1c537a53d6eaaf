/**
 * Web Push for this browser: asked for once (the button under
 * Notifications), it subscribes the service worker with the server's VAPID
 * public key and registers the subscription for the logged-in user. The
 * server then pushes a notification that no tab of theirs took in time,
 * and the service worker shows it (`public/sw.js`), also with the dashboard
 * closed. Logging out unregisters it, so the next person on this browser
 * does not get the previous one's notifications.
 */
import type { Api } from "./api.js";
import { byId, toast } from "./dom.js";

/** Whether this browser can receive Web Push at all. */
function pushSupported(): boolean {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

/**
 * Sets up the button: hidden where push is not supported, "on" once
 * subscribed. A browser that already allowed notifications is registered
 * again for the user logged in now, without asking.
 */
export function mountPushToggle(api: Api, deviceId: string): void {
  const button = byId<HTMLButtonElement>("push-toggle");
  if (!pushSupported()) return;
  button.hidden = false;
  const show = (on: boolean) => {
    button.textContent = on ? "Push on this browser: on" : "Notify this browser when I'm away";
    button.dataset.state = on ? "on" : "off";
  };
  show(false);
  if (Notification.permission === "granted") void subscribe(api, deviceId).then(() => show(true), () => show(false));
  button.addEventListener("click", () => {
    if (button.dataset.state === "on") return;
    void Notification.requestPermission().then(async (permission) => {
      if (permission !== "granted") return toast("Notifications are blocked for this site; allow them in the browser's site settings.");
      try {
        await subscribe(api, deviceId);
        show(true);
      } catch (error) {
        toast(`Could not turn push on: ${(error as Error).message}`);
      }
    });
  });
}

/** Subscribes the service worker with the server's key and registers the subscription for this user. */
async function subscribe(api: Api, deviceId: string): Promise<void> {
  const registration = await navigator.serviceWorker.ready;
  const { publicKey } = await api<{ publicKey: string }>("/push/public-key");
  let subscription = await registration.pushManager.getSubscription();
  // A subscription made with another key (the server's keys changed) cannot be pushed to: make a new one.
  if (subscription && base64url(subscription.options.applicationServerKey) !== publicKey) {
    await subscription.unsubscribe();
    subscription = null;
  }
  subscription ??= await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: publicKey });
  await api("/push-subscriptions", { body: { ...subscription.toJSON(), deviceId } });
}

/** Unregisters this browser's subscription for the user logging out; best effort (offline, it stays until the next login moves it). */
export async function unsubscribePush(api: Api): Promise<void> {
  if (!pushSupported()) return;
  const registration = await navigator.serviceWorker.getRegistration();
  const subscription = await registration?.pushManager.getSubscription();
  if (!subscription) return;
  await api("/push-subscriptions", { method: "DELETE", body: { endpoint: subscription.endpoint } }).catch(() => undefined);
  await subscription.unsubscribe();
}

function base64url(key: ArrayBuffer | null): string | null {
  if (!key) return null;
  return btoa(String.fromCharCode(...new Uint8Array(key))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
