import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { HttpError, parseInput } from "../http-errors.js";
import type { PushSender } from "../web-push.js";
import type { RouteContext } from "./context.js";

/** A base64url string that decodes to `bytes` bytes. */
const base64urlOf = (bytes: number, what: string) =>
  z.string().refine((value) => /^[A-Za-z0-9_-]+={0,2}$/.test(value) && Buffer.from(value, "base64url").length === bytes, `must be the ${what}, base64url`);

/** `PushSubscription.toJSON()`, and the dashboard's device id. */
const subscriptionBody = z.object({
  endpoint: z.url({ protocol: /^https$/ }).max(2000),
  keys: z.object({ p256dh: base64urlOf(65, "browser's P-256 public key (65 bytes)"), auth: base64urlOf(16, "16-byte authentication secret") }),
  deviceId: z.string().trim().min(1).max(200),
});
const endpointBody = z.object({ endpoint: z.string().min(1).max(2000) });

/**
 * Web Push for the dashboard, and what was sent instead of a live message:
 *
 * - `GET /api/push/public-key`: the server's VAPID public key, which the
 *   browser subscribes with;
 * - `POST /api/push-subscriptions`: registers this browser's subscription
 *   for the logged-in user (a browser that logs in as someone else moves to
 *   them), on a browser push service's host only (400
 *   `PUSH_SERVICE_NOT_ALLOWED` otherwise: the server posts to it later);
 *   `DELETE` with `{ endpoint }` forgets it (at logout);
 * - `GET /api/notifications-sent`: what was pushed or e-mailed because no
 *   device took a message in time, newest first: the company's for a
 *   manager, one's own for everyone else.
 */
export function registerPushRoutes(api: FastifyInstance, { repos, access }: RouteContext, push: PushSender): void {
  api.get("/push/public-key", async () => ({ publicKey: push.publicKey }));

  api.post("/push-subscriptions", async (request, reply) => {
    const { endpoint, keys, deviceId } = parseInput(subscriptionBody, request.body);
    const refusal = push.endpointRefusal(endpoint);
    if (refusal !== null) throw new HttpError(400, "PUSH_SERVICE_NOT_ALLOWED", refusal);
    const { companyId, userId } = request.principal;
    await repos.pushSubscriptions.save(companyId, userId, { endpoint, p256dh: keys.p256dh, auth: keys.auth, deviceId });
    return reply.code(201).send({ endpoint });
  });

  api.delete("/push-subscriptions", async (request, reply) => {
    const { endpoint } = parseInput(endpointBody, request.body);
    const { companyId, userId } = request.principal;
    if (!(await repos.pushSubscriptions.remove(companyId, userId, endpoint))) throw new HttpError(404, "NOT_FOUND", "This browser has no push subscription of yours.");
    return reply.code(204).send();
  });

  api.get("/notifications-sent", async (request) => {
    const { companyId, userId } = request.principal;
    const everyone = (await access.decide(request.principal, { action: "notification-log:read" })) === true;
    return repos.notificationsSent.list(companyId, everyone ? undefined : userId);
  });
}
