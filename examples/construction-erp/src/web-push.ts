/**
 * Web Push from the server: the VAPID key pair that identifies it to the
 * browsers' push services, and one notification sent, encrypted to a
 * browser's subscription (RFC 8291, `aes128gcm`), with the `web-push`
 * package.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Agent } from "node:https";
import webPush from "web-push";
import type { PushSubscriptionRecord } from "./data/index.js";

/** The server's VAPID identity: its P-256 key pair (base64url) and a contact for the push services. */
export interface VapidKeys {
  /** The public key; browsers subscribe with it as `applicationServerKey`. */
  publicKey: string;
  /** The private key, which signs every push request's JWT. Never commit one used in production. */
  privateKey: string;
  /** `mailto:` or `https:` contact the push services can reach the sender at. */
  subject: string;
}

/** The contact put in the VAPID JWT when `VAPID_SUBJECT` is not set. */
export const DEFAULT_VAPID_SUBJECT = "mailto:erp-admin@construction-erp.test";

/** A fresh key pair, for tests and a first development start. */
export function generateVapidKeys(subject: string = DEFAULT_VAPID_SUBJECT): VapidKeys {
  return { ...webPush.generateVAPIDKeys(), subject };
}

/**
 * The VAPID keys from `VAPID_PUBLIC_KEY`, `VAPID_PRIVATE_KEY` and
 * `VAPID_SUBJECT`; without them, a pair generated on the first start and
 * kept in `devKeyFile` (beside the development database, out of git), so
 * browsers stay subscribed across restarts. `isDevDefault` says which.
 *
 * @throws Error when only one of the two keys is set.
 */
export function resolveVapidKeys(env: NodeJS.ProcessEnv, devKeyFile: string): { keys: VapidKeys; isDevDefault: boolean } {
  const subject = env.VAPID_SUBJECT || DEFAULT_VAPID_SUBJECT;
  const { VAPID_PUBLIC_KEY: publicKey, VAPID_PRIVATE_KEY: privateKey } = env;
  if (publicKey && privateKey) return { keys: { publicKey, privateKey, subject }, isDevDefault: false };
  if (publicKey || privateKey) throw new Error("Set both VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY (`npx web-push generate-vapid-keys` makes a pair), or neither for a development pair.");
  if (existsSync(devKeyFile)) {
    const stored = JSON.parse(readFileSync(devKeyFile, "utf8")) as Pick<VapidKeys, "publicKey" | "privateKey">;
    return { keys: { publicKey: stored.publicKey, privateKey: stored.privateKey, subject }, isDevDefault: true };
  }
  const keys = generateVapidKeys(subject);
  mkdirSync(dirname(devKeyFile), { recursive: true });
  writeFileSync(devKeyFile, JSON.stringify({ publicKey: keys.publicKey, privateKey: keys.privateKey }), { mode: 0o600 });
  return { keys, isDevDefault: true };
}

/** What a browser is shown: the service worker's `push` handler passes it to `showNotification`. */
export interface PushPayload {
  title: string;
  body: string;
  /** The inbox message's id: a repeated push replaces the notification instead of adding one. */
  tag: string;
  /** The page a click opens. */
  url: string;
}

/**
 * How a push went: `sent`, or `gone` when the push service says the
 * subscription no longer exists (404, 410) or its endpoint is not on a push
 * service this server posts to (see {@link pushEndpointRefusal}).
 */
export type PushOutcome = "sent" | "gone";

/**
 * The hosts of the browsers' push services, the only ones a browser's
 * `PushManager.subscribe()` hands out endpoints on: Chrome's (FCM),
 * Firefox's (Mozilla autopush), Safari's (Apple) and Edge's (Windows).
 * A leading dot is any host under that domain.
 */
export const PUSH_SERVICE_HOSTS = ["fcm.googleapis.com", "updates.push.services.mozilla.com", ".push.apple.com", ".notify.windows.com"] as const;

/**
 * Why the server will not post to `endpoint`, or `null` when it will: an
 * `https:` URL on the default port, without credentials, on a host of
 * {@link PUSH_SERVICE_HOSTS}, or one of `extraOrigins` (origins such as
 * `https://push.example.test:8443`, for a push service of your own). Any
 * other endpoint would let whoever registers a subscription make the server
 * send requests where they choose: an address inside its network, a cloud
 * metadata service.
 */
export function pushEndpointRefusal(endpoint: string, extraOrigins: ReadonlySet<string> = new Set()): string | null {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return "The push endpoint is not a URL.";
  }
  if (extraOrigins.has(url.origin)) return null;
  const known = PUSH_SERVICE_HOSTS.map((host) => (host.startsWith(".") ? `*${host}` : host)).join(", ");
  const refusal = `The push endpoint ${url.origin} is not on a browser push service this server sends to (${known}); register the subscription a browser's PushManager.subscribe() made.`;
  if (url.protocol !== "https:" || url.port !== "" || url.username !== "" || url.password !== "") return refusal;
  const host = url.hostname;
  const allowed = PUSH_SERVICE_HOSTS.some((known) => (known.startsWith(".") ? host.endsWith(known) && host.length > known.length : host === known));
  return allowed ? null : refusal;
}

/**
 * The origins of `extraOrigins`, as {@link pushEndpointRefusal} compares them.
 *
 * @throws TypeError for one that is not an `http:` or `https:` origin.
 */
export function pushOrigins(extraOrigins: readonly string[] = []): ReadonlySet<string> {
  return new Set(
    extraOrigins.map((origin) => {
      const url = URL.canParse(origin) ? new URL(origin) : null;
      if (!url || (url.protocol !== "https:" && url.protocol !== "http:") || url.pathname !== "/" || url.search || url.hash || url.username) {
        throw new TypeError(`A push origin must be an origin such as https://push.example.test:8443, without a path; got ${JSON.stringify(origin)}.`);
      }
      return url.origin;
    }),
  );
}

/** Sends Web Push notifications as one server. */
export interface PushSender {
  /** The public key browsers subscribe with. */
  readonly publicKey: string;
  /** Why this sender will not post to `endpoint`, or `null` when it will (see {@link pushEndpointRefusal}). */
  endpointRefusal(endpoint: string): string | null;
  /**
   * Sends one notification to one browser.
   *
   * @throws WebPushError for any other answer than 2xx, 404 and 410, or
   * Error when the push service cannot be reached: worth another try later.
   */
  send(subscription: PushSubscriptionRecord, payload: PushPayload): Promise<PushOutcome>;
}

/** Options of {@link webPushSender}. */
export interface WebPushSenderOptions {
  vapid: VapidKeys;
  /** The HTTPS agent for the push services; tests pass one that trusts their local push service's certificate. */
  agent?: Agent | undefined;
  /** Socket timeout of one request, in ms; default 5000, under the undelivered hook's own timeout. */
  timeoutMs?: number;
  /** How long the push service keeps a notification for an unreachable browser, in s; default a day. */
  ttlSeconds?: number;
  /** Push services besides the browsers' own, by origin (`https://push.example.test:8443`); tests add their local one. */
  extraOrigins?: readonly string[] | undefined;
}

/** A {@link PushSender} on the `web-push` package. */
export function webPushSender(options: WebPushSenderOptions): PushSender {
  const { vapid } = options;
  const extraOrigins = pushOrigins(options.extraOrigins);
  const endpointRefusal = (endpoint: string) => pushEndpointRefusal(endpoint, extraOrigins);
  return {
    publicKey: vapid.publicKey,
    endpointRefusal,
    async send(subscription, payload) {
      // Checked again here: a row saved before the check, or an origin since dropped from the settings.
      if (endpointRefusal(subscription.endpoint) !== null) return "gone";
      try {
        await webPush.sendNotification({ endpoint: subscription.endpoint, keys: { p256dh: subscription.p256dh, auth: subscription.auth } }, JSON.stringify(payload), {
          vapidDetails: { subject: vapid.subject, publicKey: vapid.publicKey, privateKey: vapid.privateKey },
          contentEncoding: "aes128gcm",
          TTL: options.ttlSeconds ?? 86_400,
          // A push sent again for the same message replaces the first at the push service while the browser is away.
          topic: pushTopic(payload.tag),
          timeout: options.timeoutMs ?? 5000,
          ...(options.agent ? { agent: options.agent } : {}),
        });
        return "sent";
      } catch (error) {
        const status = (error as { statusCode?: unknown }).statusCode;
        if (status === 404 || status === 410) return "gone";
        throw error;
      }
    },
  };
}

/** A push service's `Topic`: at most 32 URL-safe base64 characters, whatever the message id looks like. */
function pushTopic(tag: string): string {
  return createHash("sha256").update(tag).digest("base64url").slice(0, 32);
}
