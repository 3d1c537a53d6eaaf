import { afterEach, describe, expect, test, vi } from "vitest";
import { collect, connectAs, createClient, open, request, sleep, startTestServer, waitFor, type TestServer } from "@truss/test-utils";
import { memoryInboxStore } from "@truss/core";
import type { InboxMessage } from "@truss/protocol";

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
  expect((await request(device, "inbox:ack", { ids: [] })).error.code).toBe("INVALID_PAYLOAD");
  expect((await request(device, "inbox:ack", { ids: Array.from({ length: 1001 }, (_, n) => `1-${n}`) })).error.code).toBe("INVALID_PAYLOAD");
  // One bad id anywhere in the list refuses the whole ack: first, in the middle, last.
  for (const ids of [[5, "1-0"], ["1-0", null, "1-2"], ["1-0", "1-1", "1-x"]]) {
    expect((await request(device, "inbox:ack", { ids })).error.code).toBe("INVALID_PAYLOAD");
  }
  device.close();
});

test("an ack of several ids moves the cursor to the newest of them, wherever it sits in the list", async () => {
  server = await startTestServer();
  const messages: InboxMessage[] = [];
  for (let n = 0; n < 5; n++) messages.push(await server.engine.toUser("acme", "alice").emit("notification:new", { n }));
  let device = await connectAs(server.url, phone);
  const [m0, m1, m2, m3] = messages.map((m) => m.id);
  expect((await request(device, "inbox:ack", { ids: [m1, m3, m0, m2] })).ok).toBe(true);
  device.close();
  device = createClient(server.url, phone);
  const replayed = collect<InboxMessage>(device, "inbox:message");
  await open(device);
  await waitFor(() => replayed.length === 1);
  await sleep(50);
  expect(replayed.map((m) => m.data)).toEqual([{ n: 4 }]);
  device.close();
});

test("an ack of an id the device was never sent moves its cursor no further than what it was sent", async () => {
  server = await startTestServer();
  const future = "9999999999999999-0";
  // A device sent nothing yet, and one sent a single message, both acknowledge an id far in the future.
  const laptopSession = await connectAs(server.url, laptop);
  expect((await request(laptopSession, "inbox:ack", { ids: [future] })).ok).toBe(true);
  let phoneSession = await connectAs(server.url, phone);
  const live = collect<InboxMessage>(phoneSession, "inbox:message");
  const first = await server.engine.toUser("acme", "alice").emit("notification:new", { n: 0 });
  await waitFor(() => live.length === 1);
  expect((await request(phoneSession, "inbox:ack", { ids: [future] })).ok).toBe(true);
  laptopSession.close();
  phoneSession.close();

  const later: InboxMessage[] = [];
  for (let n = 1; n <= 3; n++) later.push(await server.engine.toUser("acme", "alice").emit("notification:new", { n }));
  phoneSession = createClient(server.url, phone);
  const laptopAgain = createClient(server.url, laptop);
  const [onPhone, onLaptop] = [collect<InboxMessage>(phoneSession, "inbox:message"), collect<InboxMessage>(laptopAgain, "inbox:message")];
  await Promise.all([open(phoneSession), open(laptopAgain)]);
  await waitFor(() => onPhone.length === 3 && onLaptop.length === 4, { message: "the replays" });
  await sleep(50);
  expect(onPhone).toEqual(later);
  expect(onLaptop).toEqual([first, ...later]);
  phoneSession.close();
  laptopAgain.close();
});

test("the inbox's length cap drops the oldest and metrics report it", async () => {
  const { memoryInboxStore } = await import("@truss/core");
  server = await startTestServer({ inbox: memoryInboxStore({ maxLength: 3 }) });
  for (let n = 0; n < 5; n++) await server.engine.toUser("acme", "alice").emit("notification:new", { n });
  const device = createClient(server.url, phone);
  const got = collect<InboxMessage>(device, "inbox:message");
  await open(device);
  await waitFor(() => got.length === 3);
  expect(got.map((m) => m.data)).toEqual([{ n: 2 }, { n: 3 }, { n: 4 }]);
  expect(await server.engine.metrics()).toContain('truss_inbox_dropped_total{reason="over_cap"} 2');
  device.close();
});

describe("toUser with an idempotency key", () => {
  test("a repeat resolves with the first message, stores nothing and pushes one inbox:message to the connected device", async () => {
    const inbox = memoryInboxStore();
    server = await startTestServer({ inbox });
    const device = await connectAs(server.url, phone);
    const received = collect<InboxMessage>(device, "inbox:message");
    const send = (data: unknown, event = "expense:approved") =>
      server.engine.toUser("acme", "alice").emit(event, data, { idempotencyKey: "expense-42:approved" });

    const first = await send({ id: "e42", amount: 120 });
    await waitFor(() => received.length === 1, { message: "the first push" });
    const repeats = [await send({ id: "e42", amount: 999 }, "expense:rejected"), await send({ id: "e42", amount: 120 })];
    expect(repeats).toEqual([first, first]);
    await sleep(150);
    expect(received).toEqual([first]);
    expect(await inbox.read({ companyId: "acme", userId: "alice" }, null, 10)).toEqual([first]);

    const metrics = await server.engine.metrics();
    expect(metrics).toMatch(/^truss_inbox_duplicates_total 2$/m);
    expect(metrics).toMatch(/^truss_inbox_appended_total 1$/m);
    expect(metrics).toMatch(/^truss_broadcasts_total\{scope="user"\} 1$/m);
    device.close();
  });

  test("the same key for another user, or without a key, stores a new message", async () => {
    server = await startTestServer();
    const key = { idempotencyKey: "k-1" };
    const forAlice = await server.engine.toUser("acme", "alice").emit("notification:new", { n: 1 }, key);
    const forBob = await server.engine.toUser("acme", "bob").emit("notification:new", { n: 1 }, key);
    const forNamesake = await server.engine.toUser("globex", "alice").emit("notification:new", { n: 1 }, key);
    const unkeyed = [
      await server.engine.toUser("acme", "alice").emit("notification:new", { n: 1 }),
      await server.engine.toUser("acme", "alice").emit("notification:new", { n: 1 }),
    ];
    expect(new Set([forAlice, ...unkeyed].map((message) => message.id)).size).toBe(3);
    expect(forBob.data).toEqual({ n: 1 });
    expect(forNamesake.data).toEqual({ n: 1 });
    expect(await server.engine.metrics()).toMatch(/^truss_inbox_duplicates_total 0$/m);
  });

  test("a malformed key or options object is a TypeError before anything is stored", async () => {
    const inbox = memoryInboxStore();
    let appends = 0;
    server = await startTestServer({ inbox: { ...inbox, append: (...args: Parameters<typeof inbox.append>) => (appends++, inbox.append(...args)) } });
    const emit = (options: unknown) =>
      server.engine.toUser("acme", "alice").emit("expense:approved", { id: "e1" }, options as { idempotencyKey?: string });
    for (const idempotencyKey of ["", "\ud800", "key\udfff", "k".repeat(201), "🏗".repeat(201), 7, null, ["k"]]) {
      await expect(emit({ idempotencyKey }), JSON.stringify(idempotencyKey)).rejects.toThrow(TypeError);
    }
    await expect(emit(null)).rejects.toThrow(TypeError);
    await expect(emit("expense-1")).rejects.toThrow(TypeError);
    expect(appends).toBe(0);
    // The longest key, 200 characters of which each is two UTF-16 units, is accepted.
    await expect(emit({ idempotencyKey: "🏗".repeat(200) })).resolves.toMatchObject({ data: { id: "e1" } });
    await expect(emit({})).resolves.toMatchObject({ data: { id: "e1" } });
    expect(appends).toBe(2);
  });

  test("a retry after an append that landed but was not confirmed is pushed once to the connected device", async () => {
    const inbox = memoryInboxStore();
    let loseNextReply = true;
    server = await startTestServer({
      inbox: {
        ...inbox,
        async append(...args: Parameters<typeof inbox.append>) {
          const result = await inbox.append(...args);
          if (loseNextReply) {
            loseNextReply = false;
            throw new Error("Command timed out");
          }
          return result;
        },
      },
    });
    const device = await connectAs(server.url, phone);
    const received = collect<InboxMessage>(device, "inbox:message");
    const send = () => server.engine.toUser("acme", "alice").emit("expense:approved", { id: "e7" }, { idempotencyKey: "e7" });

    await expect(send()).rejects.toMatchObject({ code: "STORE_UNAVAILABLE" });
    await sleep(100);
    expect(received, "nothing is pushed for an append that was not confirmed").toEqual([]);
    const retried = await send();
    await waitFor(() => received.length === 1, { message: "the retried message" });
    expect(received).toEqual([retried]);
    expect(await send()).toEqual(retried);
    await sleep(150);
    expect(received).toEqual([retried]);
    expect(await inbox.read({ companyId: "acme", userId: "alice" }, null, 10)).toEqual([retried]);
    device.close();
  });
});

describe("when the store cannot be read as a device connects", () => {
  /** A memory inbox whose next `failures` reads fail as a dropped Redis connection does. */
  function flakyInbox(failures: number) {
    const inbox = memoryInboxStore();
    const flaky = {
      ...inbox,
      failures,
      read(...args: Parameters<typeof inbox.read>) {
        if (flaky.failures <= 0) return inbox.read(...args);
        flaky.failures--;
        return Promise.reject(new Error("Connection is closed."));
      },
    };
    return flaky;
  }

  test("its backlog is read again, and live messages wait behind it: the device is never sent one past a backlog it has not got", async () => {
    const inbox = flakyInbox(0);
    server = await startTestServer({ inbox });
    const backlog: InboxMessage[] = [];
    for (let n = 1; n <= 3; n++) backlog.push(await server.engine.toUser("acme", "alice").emit("notification:new", { n }));
    inbox.failures = 1;
    const device = createClient(server.url, phone);
    const received = collect<InboxMessage>(device, "inbox:message");
    const errors = collect<{ code: string }>(device, "error");
    await open(device);
    // Sent while the backlog is still unread: the device must not get it first and acknowledge it.
    const live = await server.engine.toUser("acme", "alice").emit("notification:new", { n: 4 });
    await sleep(50);
    expect(received, "nothing before the backlog").toEqual([]);

    await waitFor(() => received.length === 4, { message: "the backlog, then the live message" });
    await sleep(100);
    expect(received).toEqual([...backlog, live]);
    expect(errors).toEqual([]);
    expect(device.connected).toBe(true);
    device.close();
  });

  test("a store that stays down ends the session with STORE_UNAVAILABLE, and the device's next session gets the backlog", async () => {
    const inbox = flakyInbox(0);
    server = await startTestServer({ inbox });
    const backlog: InboxMessage[] = [];
    for (let n = 1; n <= 3; n++) backlog.push(await server.engine.toUser("acme", "alice").emit("notification:new", { n }));
    inbox.failures = Number.POSITIVE_INFINITY;
    const device = createClient(server.url, phone);
    const received = collect<InboxMessage>(device, "inbox:message");
    const errors = collect<{ code: string }>(device, "error");
    const disconnects = collect<string>(device, "disconnect");
    // The retries span about half a minute: only timeouts are faked, the sockets stay real.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      await open(device);
      await server.engine.toUser("acme", "alice").emit("notification:new", { n: 4 });
      await vi.advanceTimersByTimeAsync(35_000);
    } finally {
      vi.useRealTimers();
    }
    await waitFor(() => disconnects.length === 1, { message: "the session to end" });
    expect(disconnects).toEqual(["io server disconnect"]);
    expect(errors.map((error) => error.code)).toEqual(["STORE_UNAVAILABLE"]);
    expect(received).toEqual([]);

    inbox.failures = 0;
    const again = createClient(server.url, phone);
    const replayed = collect<InboxMessage>(again, "inbox:message");
    await open(again);
    await waitFor(() => replayed.length === 4, { message: "the whole backlog on the next session" });
    expect(replayed.map((message) => message.data)).toEqual([1, 2, 3, 4].map((n) => ({ n })));
    again.close();
  });

  test("past limits.maxBufferedBytes of live messages held for it, a socket's session ends at once with STORE_UNAVAILABLE, and its next session gets every message once, in order", async () => {
    const inbox = flakyInbox(0);
    server = await startTestServer({ inbox, limits: { maxBufferedBytes: 16 * 1024 } });
    const backlog: InboxMessage[] = [];
    for (let n = 1; n <= 3; n++) backlog.push(await server.engine.toUser("acme", "alice").emit("notification:new", { n }));
    inbox.failures = Number.POSITIVE_INFINITY;
    const device = createClient(server.url, phone);
    const received = collect<InboxMessage>(device, "inbox:message");
    const errors = collect<{ code: string }>(device, "error");
    const disconnects = collect<string>(device, "disconnect");
    await open(device);

    // About 40 KiB for the user while the backlog cannot be read: the socket may not hold it all for the retries' half minute.
    const live: InboxMessage[] = [];
    const text = "x".repeat(1024);
    for (let n = 4; n < 44; n++) live.push(await server.engine.toUser("acme", "alice").emit("notification:new", { n, text }));
    await waitFor(() => disconnects.length === 1, { timeoutMs: 2000, message: "the session to end well before the retries run out" });
    expect(disconnects).toEqual(["io server disconnect"]);
    expect(errors.map((error) => error.code)).toEqual(["STORE_UNAVAILABLE"]);
    expect(received).toEqual([]);

    inbox.failures = 0;
    const again = createClient(server.url, phone);
    const replayed = collect<InboxMessage>(again, "inbox:message");
    await open(again);
    await waitFor(() => replayed.length === 43, { message: "the whole backlog on the next session" });
    await sleep(100);
    expect(replayed).toEqual([...backlog, ...live]);
    again.close();
  });
});
