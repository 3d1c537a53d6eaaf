import { afterEach, expect, test } from "vitest";
import { collect, connectAs, createClient, open, request, sleep, startTestServer, waitFor, type TestServer } from "@truss/test-utils";
import type { InboxMessage } from "@truss/core";

let server: TestServer;
afterEach(() => server?.close());

const laptop = { userId: "alice", companyId: "acme", deviceId: "laptop" };
const phone = { userId: "alice", companyId: "acme", deviceId: "phone" };

test("toUser resolves once stored and reaches every online device", async () => {
  server = await startTestServer();
  const a = await connectAs(server.url, laptop);
  const b = await connectAs(server.url, phone);
  const [onA, onB] = [collect<InboxMessage>(a, "inbox:message"), collect<InboxMessage>(b, "inbox:message")];
  const sent = await server.engine.toUser("acme", "alice").emit("expense:approved", { id: "e1", amount: 120 });
  expect(sent).toMatchObject({ event: "expense:approved", data: { id: "e1", amount: 120 } });
  await waitFor(() => onA.length === 1 && onB.length === 1);
  expect(onA[0]).toEqual(sent);
  expect(onB[0]).toEqual(sent);
  a.close();
  b.close();
});

test("a device offline during sends gets every message once, in order, after reconnecting", async () => {
  server = await startTestServer();
  const online = await connectAs(server.url, laptop);
  const onLaptop = collect<InboxMessage>(online, "inbox:message");
  online.on("inbox:message", (message: InboxMessage) => online.emit("inbox:ack", { ids: [message.id] }));

  // The phone connects, acknowledges the first message, then drops off the network.
  let offline = await connectAs(server.url, phone);
  const first = collect<InboxMessage>(offline, "inbox:message");
  await server.engine.toUser("acme", "alice").emit("notification:new", { n: 0 });
  await waitFor(() => first.length === 1);
  expect((await request(offline, "inbox:ack", { ids: [first[0]!.id] })).ok).toBe(true);
  offline.close();

  const sent: InboxMessage[] = [];
  for (let n = 1; n <= 25; n++) sent.push(await server.engine.toUser("acme", "alice").emit("notification:new", { n }));
  await waitFor(() => onLaptop.length === 26, { message: "laptop to receive all" });

  offline = createClient(server.url, phone);
  const replayed = collect<InboxMessage>(offline, "inbox:message");
  await open(offline);
  // A send racing the replay must still arrive once and after the backlog.
  const racing = await server.engine.toUser("acme", "alice").emit("notification:new", { n: 26 });
  await waitFor(() => replayed.length >= 26, { message: "replay" });
  await sleep(100);
  expect(replayed.map((m) => m.data)).toEqual([...sent, racing].map((m) => m.data));
  expect(new Set(replayed.map((m) => m.id)).size).toBe(replayed.length);
  online.close();
  offline.close();
});

test("acknowledged messages are not replayed; an ack never moves the cursor back", async () => {
  server = await startTestServer();
  const messages: InboxMessage[] = [];
  for (let n = 0; n < 5; n++) messages.push(await server.engine.toUser("acme", "alice").emit("notification:new", { n }));
  let device = createClient(server.url, phone);
  const first = collect<InboxMessage>(device, "inbox:message");
  await open(device);
  await waitFor(() => first.length === 5);
  await request(device, "inbox:ack", { ids: [messages[3]!.id] });
  await request(device, "inbox:ack", { ids: [messages[1]!.id] });
  device.close();

  device = createClient(server.url, phone);
  const second = collect<InboxMessage>(device, "inbox:message");
  await open(device);
  await waitFor(() => second.length === 1);
  await sleep(50);
  expect(second.map((m) => m.data)).toEqual([{ n: 4 }]);
  device.close();
});

test("a malformed inbox:ack is refused with INVALID_PAYLOAD", async () => {
  server = await startTestServer();
  const device = await connectAs(server.url, phone);
  expect((await request(device, "inbox:ack", { ids: "all" })).error.code).toBe("INVALID_PAYLOAD");
  expect((await request(device, "inbox:ack", { ids: ["not-an-id"] })).error.code).toBe("INVALID_PAYLOAD");
  device.close();
});

test("the inbox's length cap drops the oldest and metrics report it", async () => {
  const { memoryInbox } = await import("@truss/core");
  server = await startTestServer({ inbox: memoryInbox({ maxLength: 3 }) });
  for (let n = 0; n < 5; n++) await server.engine.toUser("acme", "alice").emit("notification:new", { n });
  const device = createClient(server.url, phone);
  const got = collect<InboxMessage>(device, "inbox:message");
  await open(device);
  await waitFor(() => got.length === 3);
  expect(got.map((m) => m.data)).toEqual([{ n: 2 }, { n: 3 }, { n: 4 }]);
  expect(await server.engine.metrics()).toContain('truss_inbox_dropped_total{reason="over_cap"} 2');
  device.close();
});
