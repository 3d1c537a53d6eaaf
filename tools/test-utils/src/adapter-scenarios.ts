import assert from "node:assert/strict";
import type { InboxMessage } from "@truss/core";
import { collect, connectAs, createClient, open, sleep, waitFor } from "./engine.js";

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

/** A fetch init with a JSON body. */
export function jsonRequest(method: string, body: unknown): RequestInit {
  return { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
}
