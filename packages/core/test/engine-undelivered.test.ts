import { afterEach, expect, test } from "vitest";
import { collect, connectAs, createClient, open, request, sleep, startTestServer, waitFor, type TestServer } from "@truss/test-utils";
import { createRealtimeEngine, memoryInboxStore, type InboxStore, type Logger, type UndeliveredCall, type UndeliveredOptions } from "@truss/core";
import type { InboxMessage } from "@truss/protocol";
import { testAuth } from "@truss/test-utils";

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const phone = { userId: "chloe", companyId: "acme", deviceId: "phone" };

/** An engine whose undelivered handler records its calls, with short timings so each case takes well under a second or two. */
async function start(options: Partial<UndeliveredOptions> = {}, logger?: Logger) {
  const calls: UndeliveredCall[] = [];
  server = await startTestServer({
    undelivered: { afterMs: 150, pollIntervalMs: 25, handler: (call) => void calls.push(call), ...options },
    ...(logger ? { logger } : {}),
  });
  return { engine: server.engine, url: server.url, calls };
}

/** A counter's value in the engine's metrics text, 0 when it has no sample. */
async function counter(engine: TestServer["engine"], sample: string): Promise<number> {
  const line = (await engine.metrics()).split("\n").find((candidate) => candidate.startsWith(`${sample} `));
  return line ? Number(line.split(" ")[1]) : 0;
}

test("a message to an offline user is handed to the handler once, after the delay, with the message", async () => {
  const { engine, calls } = await start();
  const sentAt = Date.now();
  const message = await engine.toUser("acme", "chloe").emit("expense:rejected", { expenseId: "e-9", reason: "no receipt" });
  await sleep(100);
  expect(calls).toEqual([]);
  await waitFor(() => calls.length === 1, { message: "the undelivered call" });
  expect(Date.now() - sentAt).toBeGreaterThanOrEqual(150);
  const [call] = calls;
  expect(call).toMatchObject({ companyId: "acme", userId: "chloe", message, devicesOnline: 0, attempt: 1 });
  expect(call!.signal).toBeInstanceOf(AbortSignal);
  await sleep(300);
  expect(calls).toHaveLength(1);
  expect(await counter(engine, "truss_undelivered_calls_total")).toBe(1);
  expect(await counter(engine, 'truss_undelivered_outcomes_total{outcome="delivered"}')).toBe(1);
  expect(await counter(engine, "truss_undelivered_delay_seconds_count")).toBe(1);
});

test("an ack before the delay cancels the call", async () => {
  const { engine, url, calls } = await start({ afterMs: 400 });
  const device = await connectAs(url, phone);
  const received = collect<InboxMessage>(device, "inbox:message");
  await engine.toUser("acme", "chloe").emit("expense:rejected", { expenseId: "e-1" });
  await waitFor(() => received.length === 1);
  expect((await request(device, "inbox:ack", { ids: [received[0]!.id] })).ok).toBe(true);
  device.close();
  await sleep(700);
  expect(calls).toEqual([]);
});

test("an ack by another device of the user cancels the call too, and only for the messages it covers", async () => {
  const { engine, url, calls } = await start({ afterMs: 400 });
  const first = await engine.toUser("acme", "chloe").emit("expense:rejected", { expenseId: "e-1" });
  const laptop = await connectAs(url, { ...phone, deviceId: "laptop" });
  expect((await request(laptop, "inbox:ack", { ids: [first.id] })).ok).toBe(true);
  laptop.close();
  const second = await engine.toUser("acme", "chloe").emit("expense:rejected", { expenseId: "e-2" });
  await waitFor(() => calls.length === 1);
  await sleep(200);
  expect(calls.map((call) => call.message.id)).toEqual([second.id]);
});

test("a device online that does not acknowledge (a tab in the background) still gets the call, with devicesOnline", async () => {
  const { engine, url, calls } = await start();
  const device = await connectAs(url, phone);
  const received = collect<InboxMessage>(device, "inbox:message");
  const message = await engine.toUser("acme", "chloe").emit("expense:rejected", { expenseId: "e-3" });
  await waitFor(() => received.length === 1);
  await waitFor(() => calls.length === 1);
  expect(calls[0]).toMatchObject({ message, devicesOnline: 1, attempt: 1 });
  device.close();
});

test("per event and per send: false skips the call, { afterMs } sets its own delay", async () => {
  const { engine, calls } = await start({ afterMs: 5_000, events: { "typing:started": false, "expense:rejected": { afterMs: 100 } } });
  const user = engine.toUser("acme", "chloe");
  await user.emit("typing:started", {});
  await user.emit("expense:rejected", { expenseId: "e-4" }, { undelivered: false });
  const byEvent = await user.emit("expense:rejected", { expenseId: "e-5" });
  const bySend = await user.emit("project:assigned", { projectId: "p-1" }, { undelivered: { afterMs: 100 } });
  await user.emit("project:assigned", { projectId: "p-2" });
  await waitFor(() => calls.length === 2);
  await sleep(300);
  expect(calls.map((call) => call.message.id).sort()).toEqual([byEvent.id, bySend.id].sort());
});

test("a handler that throws is retried with backoff, then given up, logged once and counted; the engine and the inbox carry on", async () => {
  const errors: Array<{ message: string; context?: Record<string, unknown> }> = [];
  const logger: Logger = { warn() {}, error: (message, context) => void errors.push({ message, ...(context ? { context } : {}) }) };
  const attempts: number[] = [];
  const { engine, url } = await start(
    {
      maxAttempts: 3,
      backoffMs: 50,
      handler: ({ attempt }) => {
        attempts.push(attempt);
        throw new Error("the push service refused the subscription");
      },
    },
    logger,
  );
  const message = await engine.toUser("acme", "chloe").emit("expense:rejected", { expenseId: "e-6" });
  await waitFor(() => errors.some((entry) => entry.message === "undelivered call given up"), { message: "the give-up" });
  await sleep(300);
  expect(attempts).toEqual([1, 2, 3]);
  expect(errors.filter((entry) => entry.message === "undelivered call given up")).toEqual([
    { message: "undelivered call given up", context: expect.objectContaining({ id: message.id, attempts: 3, error: "the push service refused the subscription" }) },
  ]);
  expect(await counter(engine, 'truss_undelivered_outcomes_total{outcome="retried"}')).toBe(2);
  expect(await counter(engine, 'truss_undelivered_outcomes_total{outcome="given_up"}')).toBe(1);

  // The message is still in the inbox, and the engine still serves.
  const device = createClient(url, phone);
  const replayed = collect<InboxMessage>(device, "inbox:message");
  await open(device);
  await waitFor(() => replayed.length === 1);
  expect(replayed[0]).toEqual(message);
  const next = await engine.toUser("acme", "chloe").emit("expense:approved", { expenseId: "e-7" });
  await waitFor(() => replayed.length === 2);
  expect(replayed[1]).toEqual(next);
  device.close();
});

test("a handler that never settles times out (its signal aborted) and is called again", async () => {
  const signals: AbortSignal[] = [];
  const { engine } = await start({
    timeoutMs: 100,
    leaseMs: 1_000,
    backoffMs: 20,
    handler: ({ signal, attempt }) => {
      signals.push(signal);
      return attempt === 1 ? new Promise(() => {}) : undefined;
    },
  });
  await engine.toUser("acme", "chloe").emit("expense:rejected", { expenseId: "e-8" });
  await waitFor(() => signals.length === 2, { message: "the retry" });
  expect(signals[0]!.aborted).toBe(true);
  await waitFor(async () => (await counter(engine, 'truss_undelivered_outcomes_total{outcome="delivered"}')) === 1);
  expect(await counter(engine, 'truss_undelivered_outcomes_total{outcome="retried"}')).toBe(1);
});

test("close() does not wait for a handler that never settles longer than its timeout, and aborts its signal", async () => {
  let signal: AbortSignal | undefined;
  const { engine } = await start({ timeoutMs: 5_000, leaseMs: 10_000, handler: (call) => ((signal = call.signal), new Promise(() => {})) });
  await engine.toUser("acme", "chloe").emit("expense:rejected", { expenseId: "e-9" });
  await waitFor(() => signal !== undefined);
  const closing = Date.now();
  await server!.close();
  server = undefined;
  expect(Date.now() - closing).toBeLessThan(3_000);
  expect(signal!.aborted).toBe(true);
});

test("the option is refused with a store that cannot hold calls, and a send's undelivered without the option", async () => {
  const { claimUndelivered: _claim, settleUndelivered: _settle, ...plain } = memoryInboxStore();
  const inbox: InboxStore = plain;
  const handler = () => {};
  expect(() => createRealtimeEngine({ auth: testAuth(), logger: false, inbox, undelivered: { afterMs: 1000, handler } })).toThrow(
    "`undelivered` needs an inbox store with claimUndelivered() and settleUndelivered()",
  );
  expect(() => createRealtimeEngine({ auth: testAuth(), logger: false, undelivered: { afterMs: 1000, handler, leaseMs: 100, timeoutMs: 200 } })).toThrow(
    "undelivered.leaseMs (100) must be more than undelivered.timeoutMs (200)",
  );
  expect(() => createRealtimeEngine({ auth: testAuth(), logger: false, undelivered: { afterMs: 0, handler } })).toThrow("undelivered.afterMs must be a positive integer");
  expect(() => createRealtimeEngine({ auth: testAuth(), logger: false, undelivered: { afterMs: 1000, handler, retries: 3 } as never })).toThrow("unknown option `undelivered.retries`");

  server = await startTestServer();
  const user = server.engine.toUser("acme", "chloe");
  await expect(user.emit("expense:rejected", {}, { undelivered: { afterMs: 100 } })).rejects.toThrow("needs the engine's `undelivered` option");
  await expect(user.emit("expense:rejected", {}, { undelivered: false })).resolves.toMatchObject({ event: "expense:rejected" });
});

test("a send's undelivered that is not false or { afterMs } is refused before anything is stored", async () => {
  const { engine, url } = await start();
  await expect(engine.toUser("acme", "chloe").emit("expense:rejected", {}, { undelivered: { afterMs: -5 } })).rejects.toThrow("options.undelivered must be false or { afterMs }");
  const device = createClient(url, phone);
  const replayed = collect<InboxMessage>(device, "inbox:message");
  await open(device);
  await sleep(100);
  expect(replayed).toEqual([]);
  device.close();
});

test("claims a contributed store answers that the engine cannot use are logged and left to their lease; the good ones are still made, and the process carries on", async () => {
  const errors: Array<{ message: string; context?: Record<string, unknown> }> = [];
  const logger: Logger = { warn() {}, error: (message, context) => void errors.push({ message, ...(context ? { context } : {}) }) };
  const memory = memoryInboxStore();
  let broken = true;
  // The first claim comes with three the engine cannot use: nothing at all, one without its user, and one whose message throws when read.
  const inbox: InboxStore = {
    ...memory,
    claimUndelivered: async (limit, leaseMs) => {
      const claims = await memory.claimUndelivered!(limit, leaseMs);
      if (!broken || claims.length === 0) return claims;
      broken = false;
      const throwing = Object.defineProperty({ user: { companyId: "acme", userId: "chloe" }, attempt: 1 }, "message", {
        get() {
          throw new Error("the row could not be decoded");
        },
      });
      return [null, { message: claims[0]!.message, attempt: 1 }, throwing, ...claims] as never;
    },
  };
  const calls: UndeliveredCall[] = [];
  server = await startTestServer({ inbox, logger, undelivered: { afterMs: 150, pollIntervalMs: 25, handler: (call) => void calls.push(call) } });
  const message = await server.engine.toUser("acme", "chloe").emit("expense:rejected", { expenseId: "e-9" });
  await waitFor(() => calls.length === 1, { message: "the good claim's call" });
  expect(calls[0]).toMatchObject({ companyId: "acme", userId: "chloe", message, attempt: 1 });
  const dropped = errors.filter((entry) => entry.message === "an undelivered call could not be made; it is left to its lease");
  expect(dropped).toHaveLength(3);
  expect(dropped.map((entry) => entry.context?.error)).toEqual([
    expect.stringContaining("claimUndelivered answered a claim without its user, message or attempt"),
    expect.stringContaining("claimUndelivered answered a claim without its user, message or attempt"),
    "the row could not be decoded",
  ]);
  // The engine still serves.
  const device = createClient(server.url, phone);
  const replayed = collect<InboxMessage>(device, "inbox:message");
  await open(device);
  await waitFor(() => replayed.length === 1);
  expect(replayed[0]).toEqual(message);
  device.close();
});

test("sixteen calls running at once (the default concurrency) raise no false leak warning from Node", async () => {
  const warnings: string[] = [];
  const onWarning = (warning: Error) => void warnings.push(warning.name);
  process.on("warning", onWarning);
  try {
    let running = 0;
    let most = 0;
    const { engine } = await start({
      afterMs: 20,
      handler: async () => {
        most = Math.max(most, ++running);
        await sleep(150);
        running -= 1;
      },
    });
    for (let user = 0; user < 16; user++) await engine.toUser("acme", `offline-${user}`).emit("expense:approved", { user });
    await waitFor(() => most === 16, { timeoutMs: 3000, message: "16 calls at once" });
    await sleep(200);
    expect(warnings).not.toContain("MaxListenersExceededWarning");
  } finally {
    process.off("warning", onWarning);
  }
});

test("calls that come due together are made as fast as the handler takes them, concurrency at a time, not one batch a poll; with none due, one claim a poll", async () => {
  const memory = memoryInboxStore();
  let claims = 0;
  const inbox: InboxStore = { ...memory, claimUndelivered: (limit, leaseMs) => ((claims += 1), memory.claimUndelivered!(limit, leaseMs)) };
  const lateness: number[] = [];
  let running = 0;
  let most = 0;
  server = await startTestServer({
    inbox,
    undelivered: {
      afterMs: 100,
      pollIntervalMs: 300,
      concurrency: 4,
      handler: async ({ message }) => {
        lateness.push(Date.now() - (message.ts + 100));
        most = Math.max(most, ++running);
        await sleep(10);
        running -= 1;
      },
    },
  });
  for (let user = 0; user < 40; user++) await server.engine.toUser("acme", `offline-${user}`).emit("expense:rejected", { user });
  await waitFor(() => lateness.length === 40, { timeoutMs: 8000, message: "the 40 calls" });
  // Ten rounds of four 10 ms calls, after at most one poll; a batch a poll would make the last about 3 s late.
  expect(Math.max(...lateness)).toBeLessThan(300 + 1000);
  expect(most).toBe(4);
  // Slots that free together share a claim: about one a round, not one a call.
  expect(claims).toBeLessThan(25);
  const drained = claims;
  await sleep(900);
  expect(claims - drained).toBeLessThanOrEqual(4);
});

test("a handler that changes the message it is given (its id, say) has succeeded: it is not called again", async () => {
  const ids: string[] = [];
  const { engine } = await start({
    timeoutMs: 100,
    leaseMs: 300,
    handler: ({ message }) => {
      ids.push(message.id);
      message.id = `push-${message.id}`;
    },
  });
  const message = await engine.toUser("acme", "chloe").emit("expense:rejected", { expenseId: "e-10" });
  await waitFor(() => ids.length === 1, { message: "the call" });
  // Past the lease, and a few polls more: a call that was not settled would be claimed and made again.
  await sleep(600);
  expect(ids).toEqual([message.id]);
  expect(await counter(engine, 'truss_undelivered_outcomes_total{outcome="delivered"}')).toBe(1);
});

test("a handler that throws a value with no string form (Object.create(null)) is retried and given up like any other failure", async () => {
  const errors: Array<{ message: string; context?: Record<string, unknown> }> = [];
  const logger: Logger = { warn() {}, error: (message, context) => void errors.push({ message, ...(context ? { context } : {}) }) };
  const attempts: number[] = [];
  const { engine } = await start(
    {
      maxAttempts: 2,
      backoffMs: 20,
      timeoutMs: 100,
      leaseMs: 300,
      handler: ({ attempt }) => {
        attempts.push(attempt);
        throw Object.create(null);
      },
    },
    logger,
  );
  const message = await engine.toUser("acme", "chloe").emit("expense:rejected", { expenseId: "e-11" });
  await waitFor(() => errors.length > 0, { message: "the give-up" });
  await sleep(600);
  expect(attempts).toEqual([1, 2]);
  expect(errors).toEqual([{ message: "undelivered call given up", context: expect.objectContaining({ id: message.id, attempts: 2, error: expect.any(String) }) }]);
});
