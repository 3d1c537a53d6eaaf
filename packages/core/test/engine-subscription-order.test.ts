import { memoryStreamStore, type AuthorizePolicy, type StreamStore } from "@truss/core";
import { collect, connectAs, request, sleep, startTestServer, waitFor, type TestClaims, type TestServer } from "@truss/test-utils";
import type { Socket as ClientSocket } from "socket.io-client";
import { afterEach, describe, expect, test } from "vitest";

let server: TestServer;
const sockets: ClientSocket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await server?.close();
});

const connect = async (claims: TestClaims) => {
  const socket = await connectAs(server.url, claims);
  sockets.push(socket);
  return socket;
};

const alice = { userId: "alice", companyId: "acme" };
const report = { type: "site-report", id: "r1" };
/** A policy that allows everything, 200 ms later. */
const slowPolicy: AuthorizePolicy = async () => {
  await sleep(200);
  return true;
};
/** A stream store whose reads take 200 ms. */
function slowReads(): StreamStore {
  const store = memoryStreamStore();
  return {
    append: (...args) => store.append(...args),
    read: async (...args) => {
      await sleep(200);
      return store.read(...args);
    },
    trimmed: () => store.trimmed(),
  };
}
/** The topic and document rooms the server holds, of any socket. */
const subscriptionRooms = () => [...server.engine.io!.of("/").adapter.rooms.keys()].filter((room) => room.startsWith("topic:") || room.startsWith("doc"));

describe("requests on one subscription take effect in the order sent", () => {
  test.each([
    ["the policy", { authorize: slowPolicy }],
    ["the stream store's read", { authorize: () => true, streams: slowReads() }],
  ])("an unsubscribe sent while the subscribe waits on %s leaves the socket unsubscribed", async (_name, options) => {
    server = await startTestServer(options);
    const socket = await connect(alice);
    const heard = collect(socket, "stock:updated");
    const subscribed = request(socket, "topic:subscribe", { topic: "yard" });
    const unsubscribed = request(socket, "topic:unsubscribe", { topic: "yard" });
    expect(await subscribed).toMatchObject({ ok: true, topic: "yard" });
    expect(await unsubscribed).toEqual({ ok: true });
    await server.engine.toTopic("acme", "yard").emit("stock:updated", { n: 1 });
    await sleep(100);
    expect(heard).toEqual([]);
    expect(subscriptionRooms()).toEqual([]);
  });

  test("subscribe, unsubscribe, subscribe sent back to back leave the socket subscribed", async () => {
    server = await startTestServer({ authorize: slowPolicy });
    const socket = await connect(alice);
    const heard = collect(socket, "stock:updated");
    const answers = await Promise.all(["topic:subscribe", "topic:unsubscribe", "topic:subscribe"].map((event) => request(socket, event, { topic: "yard" })));
    expect(answers).toMatchObject([{ ok: true }, { ok: true }, { ok: true }]);
    await server.engine.toTopic("acme", "yard").emit("stock:updated", { n: 1 });
    await waitFor(() => heard.length === 1);
  });

  test("an unwatch sent while the watch waits on the policy stops the document's updates", async () => {
    server = await startTestServer({ authorize: slowPolicy });
    const socket = await connect(alice);
    const heard = collect(socket, "document:updated");
    const watched = request(socket, "document:watch", report);
    const unwatched = request(socket, "document:unwatch", report);
    expect(await watched).toEqual({ ok: true, document: null });
    expect(await unwatched).toEqual({ ok: true });
    await server.engine.documents.update("acme", report.type, report.id, { baseVersion: 0, changes: { notes: "poured" } });
    await sleep(100);
    expect(heard).toEqual([]);
    expect(subscriptionRooms()).toEqual([]);
  });

  test("subscriptions ended before their subscribe finished count nothing against limits.maxSubscriptionsPerConnection", async () => {
    server = await startTestServer({ authorize: slowPolicy, limits: { maxSubscriptionsPerConnection: 2 } });
    const socket = await connect(alice);
    await Promise.all(
      ["a", "b", "c"].flatMap((topic) => [request(socket, "topic:subscribe", { topic }), request(socket, "topic:unsubscribe", { topic })]),
    );
    expect(subscriptionRooms()).toEqual([]);
    const answers = await Promise.all(["d", "e", "f"].map((topic) => request(socket, "topic:subscribe", { topic })));
    expect(answers.map((answer) => (answer.ok ? true : answer.error.code))).toEqual([true, true, "TOO_MANY_SUBSCRIPTIONS"]);
  });

  test("a socket that disconnects while a subscribe and an unsubscribe wait leaves no room behind", async () => {
    server = await startTestServer({ authorize: slowPolicy, streams: slowReads() });
    const socket = await connect(alice);
    socket.emit("topic:subscribe", { topic: "yard" }, () => {});
    socket.emit("topic:unsubscribe", { topic: "yard" }, () => {});
    socket.emit("document:watch", report, () => {});
    await sleep(50);
    socket.close();
    await waitFor(() => server.engine.io!.of("/").sockets.size === 0);
    await sleep(500);
    expect(subscriptionRooms()).toEqual([]);
    const again = await connect(alice);
    expect(await request(again, "topic:subscribe", { topic: "yard" })).toMatchObject({ ok: true });
    expect(subscriptionRooms()).toHaveLength(1);
  });
});
