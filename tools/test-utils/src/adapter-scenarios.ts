import assert from "node:assert/strict";
import type { AuthorizePolicy, RealtimeEngineOptions } from "@truss/core";
import type { Ack, ErrorPayload, InboxMessage, TopicDropped } from "@truss/protocol";
import type { Socket as ClientSocket } from "socket.io-client";
import { collect, connectAs, createClient, open, request, sleep, waitFor } from "./engine.js";

/**
 * The scenarios every framework adapter's test app serves the same way, so
 * Fastify, Express and NestJS are held to one behaviour. The app must have:
 * `PATCH /companies/:companyId/projects/:id { name }` emitting
 * `project:updated { id, name }` to that company (200), and
 * `POST /companies/:companyId/expenses/:id/approve { submittedBy }` sending
 * `expense:approved { id }` to that company's user through the inbox (202
 * with `{ messageId }`).
 */
export const adapterScenarios = {
  /** A REST change reaches the company's client and not another company's, whatever it listens to. */
  async restChangeReachesOnlyItsCompany(url: string): Promise<void> {
    const alice = await connectAs(url, { userId: "alice", companyId: "acme" });
    const eve = await connectAs(url, { userId: "eve", companyId: "globex" });
    try {
      const aliceSaw = collect(alice, "project:updated");
      const eveSaw: string[] = [];
      eve.onAny((event: string) => eveSaw.push(event));

      const response = await fetch(`${url}/companies/acme/projects/p1`, jsonRequest("PATCH", { name: "Tower B" }));
      assert.equal(response.status, 200);
      await waitFor(() => aliceSaw.length === 1, { message: "acme's broadcast" });
      assert.deepEqual(aliceSaw, [{ id: "p1", name: "Tower B" }]);
      await sleep(100);
      assert.deepEqual(eveSaw, []);
    } finally {
      alice.close();
      eve.close();
    }
  },

  /**
   * `toUser` from a route reaches the user's device through the inbox, with
   * the id the route was given, and not the user with the same id in another company.
   */
  async toUserFromRouteReachesTheDevice(url: string): Promise<void> {
    const alice = createClient(url, { userId: "alice", companyId: "acme" });
    const namesake = createClient(url, { userId: "alice", companyId: "globex" });
    try {
      const inbox = collect<InboxMessage>(alice, "inbox:message");
      const namesakeInbox = collect<InboxMessage>(namesake, "inbox:message");
      await Promise.all([open(alice), open(namesake)]);
      const response = await fetch(`${url}/companies/acme/expenses/e7/approve`, jsonRequest("POST", { submittedBy: "alice" }));
      assert.equal(response.status, 202);
      const { messageId } = (await response.json()) as { messageId: string };
      await waitFor(() => inbox.length === 1, { message: "the inbox message" });
      assert.equal(inbox[0]!.id, messageId);
      assert.equal(inbox[0]!.event, "expense:approved");
      assert.deepEqual(inbox[0]!.data, { id: "e7" });
      await sleep(100);
      assert.deepEqual(namesakeInbox, []);
    } finally {
      alice.close();
      namesake.close();
    }
  },
};

/**
 * Who works on which project, per company: a test app's own data, which its
 * policy reads and its routes change. acme's `p1` crew is alice and bob,
 * globex's is eve.
 */
export class ProjectCrews {
  private readonly members = new Map([
    ["acme/p1", new Set(["alice", "bob"])],
    ["globex/p1", new Set(["eve"])],
  ]);

  /** Whether the user is on the company's project crew. */
  has(companyId: string, projectId: string | undefined, userId: string): boolean {
    return this.members.get(`${companyId}/${projectId}`)?.has(userId) === true;
  }

  /** Takes the user off the company's project crew. */
  remove(companyId: string, projectId: string, userId: string): void {
    this.members.get(`${companyId}/${projectId}`)?.delete(userId);
  }

  /** The app's policy: only a project's crew may subscribe to its topic; everything else is allowed. */
  readonly authorize: AuthorizePolicy = (principal, request) =>
    request.action !== "topic:subscribe" || this.has(principal.companyId, request.params.projectId, principal.userId);
}

const alicePhone = { userId: "alice", companyId: "acme", deviceId: "phone" };
const aliceTablet = { userId: "alice", companyId: "acme", deviceId: "tablet" };
const acmeBob = { userId: "bob", companyId: "acme" };
const acmeCarol = { userId: "carol", companyId: "acme" };
const globexAlice = { userId: "alice", companyId: "globex" };
const globexEve = { userId: "eve", companyId: "globex" };

const subscribeToP1 = (socket: ClientSocket) => request<Ack<{ topic: string }>>(socket, "topic:subscribe", { topic: "project:p1" });

/** A subscribe ack without the stream start it carries, which differs per company. */
function topicOf(ack: Ack<{ topic: string }>): Ack<{ topic: string }> {
  return ack.ok ? { ok: true, topic: ack.topic } : ack;
}

/** Asserts that the policy refused a subscription. */
function assertForbidden(ack: Ack<{ topic: string }>): void {
  assert.equal(ack.ok, false);
  assert.equal(ack.error.code, "FORBIDDEN");
}

/**
 * The revocation scenarios every framework adapter's test app serves the same
 * way. The app's engine takes {@link revocationScenarios.options} for a
 * {@link ProjectCrews} of its own, and the app must have
 * `POST /companies/:companyId/users/:userId/revoke` answering
 * `disconnectUser`'s result (200), and
 * `POST /companies/:companyId/projects/:id/site-reports { summary }` emitting
 * `site-report:filed { projectId, summary }` to the company's
 * `project:<id>` topic (201 with the report).
 */
export const revocationScenarios = {
  /** The engine options of the app: the crews' policy and the `project:{projectId}` topics. */
  options(crews: ProjectCrews): Pick<RealtimeEngineOptions, "authorize" | "topics"> {
    return { authorize: crews.authorize, topics: { patterns: ["project:{projectId}"] } };
  },

  /**
   * `disconnectUser` from a route closes every device of the user with
   * `ACCESS_REVOKED` and answers how many, leaving the company's other users
   * and the same user id in another company connected.
   */
  async disconnectUserFromRouteClosesEveryDevice(url: string): Promise<void> {
    const phone = await connectAs(url, alicePhone);
    const tablet = await connectAs(url, aliceTablet);
    const bob = await connectAs(url, acmeBob);
    const namesake = await connectAs(url, globexAlice);
    try {
      const errors = [phone, tablet, bob, namesake].map((socket) => collect<ErrorPayload>(socket, "error"));
      const reasons = [phone, tablet].map((socket) => collect<string>(socket, "disconnect"));

      const response = await fetch(`${url}/companies/acme/users/alice/revoke`, { method: "POST" });

      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { sockets: 2, complete: true });
      await waitFor(() => reasons.every((reason) => reason.length === 1), { message: "both of alice's disconnects" });
      assert.deepEqual(reasons, [["io server disconnect"], ["io server disconnect"]]);
      assert.deepEqual(
        errors.slice(0, 2).map((received) => received.map((error) => error.code)),
        [["ACCESS_REVOKED"], ["ACCESS_REVOKED"]],
      );
      await sleep(100);
      assert.deepEqual([bob.connected, namesake.connected], [true, true]);
      assert.deepEqual(errors.slice(2), [[], []]);
    } finally {
      for (const socket of [phone, tablet, bob, namesake]) socket.close();
    }
  },

  /**
   * `toTopic` from a route reaches the topic's subscribers in that company,
   * not the same topic in another company nor a user the policy refused.
   */
  async toTopicFromRouteReachesOnlyItsCompany(url: string): Promise<void> {
    const alice = await connectAs(url, alicePhone);
    const carol = await connectAs(url, acmeCarol);
    const eve = await connectAs(url, globexEve);
    try {
      for (const socket of [alice, eve]) assert.deepEqual(topicOf(await subscribeToP1(socket)), { ok: true, topic: "project:p1" });
      // Carol is not on the crew.
      assertForbidden(await subscribeToP1(carol));
      const aliceSaw = collect(alice, "site-report:filed");
      const othersSaw: string[] = [];
      for (const socket of [carol, eve]) socket.onAny((event: string) => othersSaw.push(event));

      const response = await fetch(`${url}/companies/acme/projects/p1/site-reports`, jsonRequest("POST", { summary: "Level 3 slab poured" }));

      assert.equal(response.status, 201);
      await waitFor(() => aliceSaw.length === 1, { message: "the topic's event" });
      assert.deepEqual(aliceSaw, [{ projectId: "p1", summary: "Level 3 slab poured" }]);
      await sleep(100);
      assert.deepEqual(othersSaw, []);
    } finally {
      for (const socket of [alice, carol, eve]) socket.close();
    }
  },

  /**
   * `unsubscribeUser` ends the user's subscription on every device without
   * disconnecting them, and the policy keeps it ended.
   * `removeAliceFromCrew` takes alice off acme's `p1` crew, then unsubscribes
   * her from `project:p1`, and resolves with `unsubscribeUser`'s result.
   */
  async unsubscribeUserEndsEveryDevice(url: string, removeAliceFromCrew: () => Promise<unknown>): Promise<void> {
    const phone = await connectAs(url, alicePhone);
    const tablet = await connectAs(url, aliceTablet);
    const bob = await connectAs(url, acmeBob);
    try {
      for (const socket of [phone, tablet, bob]) assert.equal((await subscribeToP1(socket)).ok, true);
      const dropped = [phone, tablet].map((socket) => collect<TopicDropped>(socket, "topic:dropped"));
      const aliceSaw = [phone, tablet].map((socket) => collect(socket, "site-report:filed"));
      const bobSaw = collect(bob, "site-report:filed");

      assert.deepEqual(await removeAliceFromCrew(), { sockets: 2, complete: true });

      await waitFor(() => dropped.every((notices) => notices.length === 1), { message: "both topic:dropped notices" });
      for (const notices of dropped) {
        // The message is for a person; only its presence is checked.
        const shapes = notices.map((notice) => ({ ...notice, error: { ...notice.error, message: typeof notice.error.message } }));
        assert.deepEqual(shapes, [{ topic: "project:p1", error: { code: "ACCESS_REVOKED", message: "string" } }]);
      }
      await fetch(`${url}/companies/acme/projects/p1/site-reports`, jsonRequest("POST", { summary: "Crane inspected" }));
      await waitFor(() => bobSaw.length === 1, { message: "bob's copy" });
      await sleep(100);
      assert.deepEqual(aliceSaw, [[], []]);
      assert.deepEqual([phone.connected, tablet.connected], [true, true]);
      assertForbidden(await subscribeToP1(phone));
    } finally {
      for (const socket of [phone, tablet, bob]) socket.close();
    }
  },

  /**
   * The `removeAliceFromCrew` of an app that serves
   * `DELETE /companies/:companyId/projects/:id/crew/:userId`, answering
   * `unsubscribeUser`'s result.
   */
  async removeAliceFromCrewByRoute(url: string): Promise<unknown> {
    const response = await fetch(`${url}/companies/acme/projects/p1/crew/alice`, { method: "DELETE" });
    return response.json();
  },
};

/** A fetch init with a JSON body. */
export function jsonRequest(method: string, body: unknown): RequestInit {
  return { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
}
