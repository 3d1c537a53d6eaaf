import { afterEach, expect, test } from "vitest";
import { memoryDocumentStore, type AuthorizePolicy, type DocumentKey, type DocumentStore } from "@truss/core";
import { sleep, waitFor, type TestServer } from "@truss/test-utils";
import { DEFAULT_MAX_REFUSED_ATTEMPTS, type TrussClientError } from "@truss/client";
import { alice, closeAll, openClient, startServer, waitForStatus } from "./helpers.js";

afterEach(closeAll);

/** What a promise came to so far: `pending`, `resolved`, or the code it rejected with. */
function outcomeOf(promise: Promise<unknown>): () => string {
  let outcome = "pending";
  promise.then(
    () => (outcome = "resolved"),
    (error: TrussClientError) => (outcome = error.code),
  );
  return () => outcome;
}

/** The topic and document rooms the server holds. */
function rooms(server: TestServer): string[] {
  return [...server.engine.io!.of("/").adapter.rooms.keys()].filter((room) => room.startsWith("topic") || room.startsWith("doc"));
}

/** A policy that lets everything through after `delayMs`, as one reading the project's members from a database does. */
const slowPolicy =
  (delayMs: () => number): AuthorizePolicy =>
  async () => {
    await sleep(delayMs());
    return true;
  };

test("a subscribe or watch withdrawn before it went out rejects with CANCELLED, in the same tick or queued behind an earlier request", async () => {
  const server = await startServer({ authorize: slowPolicy(() => 100), topics: { patterns: ["project:{projectId}"] } });
  const client = openClient(server.url, alice);
  await waitForStatus(client, "connected");

  const watch = outcomeOf(client.documents.watch("site-report", "r-1"));
  void client.documents.unwatch("site-report", "r-1");
  const subscribe = outcomeOf(client.subscribe("project:p-1"));
  void client.unsubscribe("project:p-1");
  // A toggle: the second subscribe waits behind the first one (with the policy) and the unsubscribe.
  const first = outcomeOf(client.subscribe("project:p-2"));
  await sleep(10);
  void client.unsubscribe("project:p-2");
  await sleep(10);
  const second = outcomeOf(client.subscribe("project:p-2"));
  await sleep(10);
  void client.unsubscribe("project:p-2");

  await waitFor(() => [watch(), subscribe(), second()].every((outcome) => outcome !== "pending"), { timeoutMs: 2000, message: "the withdrawn requests to settle" });
  expect({ watch: watch(), subscribe: subscribe(), second: second() }).toEqual({ watch: "CANCELLED", subscribe: "CANCELLED", second: "CANCELLED" });
  // The one that went out gets the server's answer.
  await waitFor(() => first() !== "pending", { message: "the first subscribe's answer" });
  expect(first()).toBe("resolved");
  await waitFor(() => rooms(server).length === 0, { message: "the server to hold nothing" });
  expect(client.subscriptions.size).toBe(0);
});

test("a first subscribe or watch the server did not answer in time is asked for again, and resolves once accepted", async () => {
  // The first topic and the first document are answered after the client gave up waiting; then the policy is fast.
  let asked = 0;
  const server = await startServer({ authorize: slowPolicy(() => (++asked <= 2 ? 700 : 0)), topics: { patterns: ["project:{projectId}"] } });
  const client = openClient(server.url, alice, { ackTimeoutMs: 300 });
  const errors: string[] = [];
  client.onError((error) => errors.push(error.code));
  await waitForStatus(client, "connected");

  const subscribe = outcomeOf(client.subscribe("project:p-1"));
  const watch = outcomeOf(client.documents.watch("site-report", "r-1"));
  await waitFor(() => subscribe() !== "pending" && watch() !== "pending", { timeoutMs: 5000, message: "the answers" });
  // A passing failure was no answer: the calls waited for the server's.
  expect({ subscribe: subscribe(), watch: watch() }).toEqual({ subscribe: "resolved", watch: "resolved" });
  expect([...client.subscriptions]).toEqual(["project:p-1"]);
  expect(rooms(server)).toHaveLength(2);
  // Each lost answer is news for onError, not for the caller (a resend the server runs after the slow one may be late too).
  expect(errors.length).toBeGreaterThanOrEqual(2);
  expect(new Set(errors)).toEqual(new Set(["TIMEOUT"]));
});

test("a watch the server fails on every time (INTERNAL_ERROR) is refused after a few attempts, instead of keeping its caller waiting for good", async () => {
  // A document store with a bug for one document: every watch of it fails on the server, answered INTERNAL_ERROR.
  const documents = memoryDocumentStore();
  const broken: DocumentStore = Object.assign(Object.create(documents) as DocumentStore, {
    get: (key: DocumentKey) => (key.id === "r-broken" ? Promise.reject(new TypeError("a bug in the store")) : documents.get(key)),
  });
  const server = await startServer({ documents: broken });
  const client = openClient(server.url, alice);
  const errors: string[] = [];
  client.onError((error) => errors.push(error.code));
  await waitForStatus(client, "connected");

  const fine = outcomeOf(client.documents.watch("site-report", "r-1"));
  const failing = outcomeOf(client.documents.watch("site-report", "r-broken"));
  await waitFor(() => failing() !== "pending", { timeoutMs: 25_000, message: "the failing watch to settle" });
  expect(failing()).toBe("INTERNAL_ERROR");
  // Reported each time it was to be sent again, then refused on the last failure in a row.
  expect(errors.filter((code) => code === "INTERNAL_ERROR")).toHaveLength(DEFAULT_MAX_REFUSED_ATTEMPTS - 1);
  expect(fine()).toBe("resolved");
  expect(rooms(server)).toHaveLength(1);
}, 30_000);
