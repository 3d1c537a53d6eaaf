/**
 * A browser vendor's push service, on 127.0.0.1, for tests: no real one can
 * be reached from here. It hands out subscriptions as a browser would (a
 * P-256 key pair and an auth secret, made with node:crypto), and for each
 * push it checks the VAPID JWT (ES256 under the `k` key, `aud` its own
 * origin, `exp` ahead) and decrypts the `aes128gcm` body as the browser
 * would (RFC 8291: ECDH, then HKDF). It speaks HTTPS, as every push service
 * does, with a self-signed certificate that `agent` trusts.
 */
import { createECDH, createDecipheriv, createPublicKey, hkdfSync, randomBytes, verify, type ECDH } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Agent, createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** One push as the browser would get it, or why the push service refused it. */
export interface ReceivedPush {
  subscription: string;
  /** The decrypted payload, parsed as JSON. */
  payload: any;
  /** The VAPID key the request was signed with (`k`). */
  vapidKey: string;
  /** The JWT's claims. */
  claims: { aud: string; exp: number; sub: string };
  headers: { ttl: string | undefined; topic: string | undefined };
}

/** A subscription as `PushSubscription.toJSON()` gives it, plus the browser's private half. */
export interface TestSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
  /** What this subscription's endpoint answers: 201, or 404 / 410 for a subscription gone. */
  status: number;
}

/** The running push service. */
export interface LocalPushService {
  /** Trusts the service's certificate; pass it to the ERP as `undelivered.pushAgent`. */
  agent: Agent;
  /** Its origin (`https://127.0.0.1:<port>`); pass it to the ERP in `undelivered.pushOrigins`, which refuses any other host than the browsers' push services. */
  origin: string;
  /** Every push that passed the checks, in arrival order. */
  received: ReceivedPush[];
  /** Pushes refused, with the reason: a test expects none. */
  refused: string[];
  /** A new subscription, as the browser's `pushManager.subscribe()` makes one. */
  subscribe(): TestSubscription;
  close(): Promise<void>;
}

/** Starts the push service on a free port of 127.0.0.1. */
export async function startPushService(): Promise<LocalPushService> {
  const directory = mkdtempSync(join(tmpdir(), "erp-push-"));
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", join(directory, "key.pem"), "-out", join(directory, "cert.pem")], { stdio: "ignore" });
  const key = readFileSync(join(directory, "key.pem"));
  const cert = readFileSync(join(directory, "cert.pem"));
  rmSync(directory, { recursive: true, force: true });

  const browsers = new Map<string, { ecdh: ECDH; auth: Buffer; subscription: TestSubscription }>();
  const received: ReceivedPush[] = [];
  const refused: string[] = [];
  const server = createServer({ key, cert }, (request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const id = request.url?.split("/").at(-1) ?? "";
      const browser = browsers.get(id);
      try {
        if (!browser) throw new Error(`no subscription ${id}`);
        const { claims, vapidKey } = checkVapid(String(request.headers.authorization), origin);
        if (request.headers["content-encoding"] !== "aes128gcm") throw new Error(`content-encoding ${request.headers["content-encoding"]}`);
        const payload = JSON.parse(decrypt(Buffer.concat(chunks), browser.ecdh, browser.auth).toString("utf8"));
        received.push({ subscription: browser.subscription.endpoint, payload, vapidKey, claims, headers: { ttl: request.headers.ttl as string, topic: request.headers.topic as string } });
        response.writeHead(browser.subscription.status).end();
      } catch (error) {
        refused.push((error as Error).message);
        response.writeHead(400).end((error as Error).message);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const agent = new Agent({ ca: cert });

  return {
    agent,
    origin,
    received,
    refused,
    subscribe() {
      const ecdh = createECDH("prime256v1");
      ecdh.generateKeys();
      const auth = randomBytes(16);
      const id = randomBytes(8).toString("hex");
      const subscription = { endpoint: `${origin}/push/${id}`, keys: { p256dh: ecdh.getPublicKey().toString("base64url"), auth: auth.toString("base64url") }, status: 201 };
      browsers.set(id, { ecdh, auth, subscription });
      return subscription;
    },
    async close() {
      agent.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Checks `Authorization: vapid t=<JWT>, k=<public key>`: an ES256 signature by `k`, for this origin, not expired. */
function checkVapid(header: string, origin: string): { claims: ReceivedPush["claims"]; vapidKey: string } {
  const match = /^vapid t=([\w-]+\.[\w-]+\.[\w-]+), k=([\w-]+)$/.exec(header);
  if (!match) throw new Error(`authorization header ${header}`);
  const [jwt, vapidKey] = [match[1]!, match[2]!];
  const [head, body, signature] = jwt.split(".") as [string, string, string];
  if (JSON.parse(Buffer.from(head, "base64url").toString()).alg !== "ES256") throw new Error("JWT alg is not ES256");
  const point = Buffer.from(vapidKey, "base64url");
  const publicKey = createPublicKey({ key: { kty: "EC", crv: "P-256", x: point.subarray(1, 33).toString("base64url"), y: point.subarray(33).toString("base64url") }, format: "jwk" });
  if (!verify("sha256", Buffer.from(`${head}.${body}`), { key: publicKey, dsaEncoding: "ieee-p1363" }, Buffer.from(signature, "base64url"))) throw new Error("bad VAPID signature");
  const claims = JSON.parse(Buffer.from(body, "base64url").toString()) as ReceivedPush["claims"];
  if (claims.aud !== origin) throw new Error(`aud ${claims.aud}, not ${origin}`);
  if (!(claims.exp > Date.now() / 1000 && claims.exp <= Date.now() / 1000 + 86_400)) throw new Error(`exp ${claims.exp} not within the next 24 h`);
  return { claims, vapidKey };
}

/** RFC 8291 on RFC 8188: salt, record size, the sender's public key, then one record of AES-128-GCM. */
function decrypt(body: Buffer, ecdh: ECDH, auth: Buffer): Buffer {
  const salt = body.subarray(0, 16);
  const idLength = body.readUInt8(20);
  const senderKey = body.subarray(21, 21 + idLength);
  const record = body.subarray(21 + idLength);
  const keyInfo = Buffer.concat([Buffer.from("WebPush: info\0"), ecdh.getPublicKey(), senderKey]);
  const ikm = Buffer.from(hkdfSync("sha256", ecdh.computeSecret(senderKey), auth, keyInfo, 32));
  const cek = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: aes128gcm\0"), 16));
  const nonce = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: nonce\0"), 12));
  const decipher = createDecipheriv("aes-128-gcm", cek, nonce);
  decipher.setAuthTag(record.subarray(-16));
  const padded = Buffer.concat([decipher.update(record.subarray(0, -16)), decipher.final()]);
  // The last record ends with the delimiter 2, then zero padding.
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end -= 1;
  if (padded[end] !== 2) throw new Error("no last-record delimiter");
  return padded.subarray(0, end);
}
