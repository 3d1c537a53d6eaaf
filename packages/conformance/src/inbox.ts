import assert from "node:assert/strict";
import type { InboxOptions, InboxStore } from "@truss/core";
import { type InboxMessage, isInboxId } from "@truss/protocol";
import { isPlausibleTimestamp, uniqueId } from "./fixtures.js";
import { appendSequence, assertStrictlyIncreasing, deviceOf, freshUser, type InboxCases } from "./inbox-fixtures.js";
import { registerInboxIdempotencyCases } from "./inbox-idempotency.js";
import { registerInboxIsolationCases } from "./inbox-isolation.js";
import { registerInboxRetentionCases } from "./inbox-retention.js";
import { caseRegistrar } from "./registrar.js";
import type { Factory, SuiteOptions, TestFunction } from "./runner.js";

/** Capabilities of the inbox under test, and the suite's hooks. */
export interface InboxSuiteOptions extends SuiteOptions<InboxStore> {
  /**
   * Calling the factory twice gives two handles on the same data, as two
   * engine nodes sharing one Redis would hold. The concurrent-append cases
   * (with and without an idempotency key) then spread their appends over both
   * handles.
   */
  sharedBackend?: boolean;
}

/**
 * Registers the {@link InboxStore} conformance cases with `test`. The factory
 * is called once per case with the options that case needs (a short TTL, a
 * small cap; `{}` otherwise), and every case uses fresh random company and
 * user ids. Idempotent appends (`append(..., { idempotencyKey })`) are
 * covered too: repeats, keys of other users and companies, racing repeats,
 * expiry after the TTL, the first message dropped by the cap, the bound on
 * remembered keys, and malformed keys.
 *
 * @example
 * inboxSuite(test, (options) => redisInboxStore({ redis, ...options }), { sharedBackend: true });
 */
export function inboxSuite(
  test: TestFunction,
  factory: Factory<InboxStore, InboxOptions>,
  options: InboxSuiteOptions = {},
): void {
  const cases = caseRegistrar(test, factory, options, { prefix: "InboxStore", factoryOptions: {} });
  registerInboxLogCases(cases, options.sharedBackend ?? false);
  registerInboxCursorCases(cases);
  registerInboxRetentionCases(cases);
  registerInboxIsolationCases(cases);
  registerInboxIdempotencyCases(cases, options.sharedBackend ?? false);
}

const ids = (messages: readonly InboxMessage[]) => messages.map((message) => message.id);

function registerInboxLogCases(cases: InboxCases, sharedBackend: boolean): void {
  cases.withInstance("append assigns an id and a timestamp and keeps event and data", async (inbox) => {
    const data = { expenseId: uniqueId("expense"), amount: 129.5, tags: ["fuel"] };
    const { message, duplicate } = await inbox.append(freshUser(), "expense:approved", data);
    assert.equal(duplicate, false);
    assert.ok(isInboxId(message.id), `${message.id} is an inbox id`);
    assert.equal(message.event, "expense:approved");
    assert.deepEqual(message.data, data);
    assert.ok(isPlausibleTimestamp(message.ts), `ts ${message.ts} is epoch ms`);
  });

  cases.withInstance("read returns every message oldest first", async (inbox) => {
    const user = freshUser();
    const appended = await appendSequence(inbox, user, 5);
    const read = await inbox.read(user, null, 100);
    assert.deepEqual(read, appended);
  });

  cases.withInstance("read of an inbox that was never written is empty", async (inbox) => {
    assert.deepEqual(await inbox.read(freshUser(), null, 10), []);
  });

  cases.withInstance("read pages through the log with afterId and limit", async (inbox) => {
    const user = freshUser();
    const appended = await appendSequence(inbox, user, 10);
    const pages: InboxMessage[][] = [];
    let afterId: string | null = null;
    for (;;) {
      const page: InboxMessage[] = await inbox.read(user, afterId, 3);
      if (page.length === 0) break;
      assert.ok(pages.length < 10, "paging ends");
      pages.push(page);
      afterId = page.at(-1)!.id;
    }
    assert.deepEqual(pages.map((page) => page.length), [3, 3, 3, 1]);
    assert.deepEqual(ids(pages.flat()), ids(appended));
  });

  // `read`: ids "greater than afterId", in the order `compareInboxIds` gives:
  // by number, so "<ms>-10" comes after "<ms>-9", and a 13-digit ms after a 12-digit one.
  cases.withInstance("read compares ids as numbers, not as text", async (inbox) => {
    const user = freshUser();
    const appended = await appendSequence(inbox, user, 3);
    assert.deepEqual(ids(await inbox.read(user, "999999999999-0", 10)), ids(appended), "an older ms with fewer digits");
    assert.deepEqual(await inbox.read(user, "10000000000000-0", 10), [], "a newer ms with more digits");
    // Many appends at once share milliseconds where the store is fast enough,
    // so sequences past 9 come up: each read after an id returns the next one.
    const burst = freshUser();
    await Promise.all(Array.from({ length: 50 }, (_, index) => inbox.append(burst, "expense:approved", { index })));
    const stored = ids(await inbox.read(burst, null, 100));
    assert.equal(stored.length, 50);
    for (let index = 0; index < stored.length; index += 1) {
      assert.deepEqual(ids(await inbox.read(burst, stored[index]!, 2)), stored.slice(index + 1, index + 3), `read after ${stored[index]}`);
    }
  });

  cases.withInstance("ids strictly increase across 200 rapid appends", async (inbox) => {
    const user = freshUser();
    const appended = await appendSequence(inbox, user, 200);
    assertStrictlyIncreasing(ids(appended));
    assert.deepEqual(ids(await inbox.read(user, null, 1000)), ids(appended));
  });

  const concurrentName = sharedBackend
    ? "100 concurrent appends through two nodes are all stored with distinct ids"
    : "100 concurrent appends are all stored with distinct ids";
  const concurrentAppends = async (handles: InboxStore[]) => {
    const user = freshUser();
    const appended = await Promise.all(
      Array.from({ length: 100 }, (_, index) =>
        handles[index % handles.length]!.append(user, "project:assigned", { index }).then((result) => result.message),
      ),
    );
    assert.equal(new Set(ids(appended)).size, 100);
    const read = await handles[0]!.read(user, null, 1000);
    assertStrictlyIncreasing(ids(read));
    assert.deepEqual(new Set(ids(read)), new Set(ids(appended)));
    const indexes = read.map((message) => (message.data as { index: number }).index);
    assert.deepEqual([...indexes].sort((a, b) => a - b), Array.from({ length: 100 }, (_, index) => index));
  };
  if (sharedBackend) cases.withTwoHandles(concurrentName, (nodeA, nodeB) => concurrentAppends([nodeA, nodeB]));
  else cases.withInstance(concurrentName, (inbox) => concurrentAppends([inbox]));

  // `InboxStore`: messages are copied in and out.
  cases.withInstance("a caller changing data it appended, or a message it was handed, changes nothing stored", async (inbox) => {
    const user = freshUser();
    const data = { expenseId: uniqueId("expense"), amount: 1, tags: ["fuel"] };
    const { message } = await inbox.append(user, "expense:approved", data);
    const kept = structuredClone(message);
    data.amount = 2;
    data.tags.push("changed after append");
    const [read] = await inbox.read(user, null, 10);
    for (const handedOut of [message, read!]) {
      const handedData = handedOut.data as typeof data;
      handedData.amount = 999;
      handedData.tags.push("changed after a read");
      handedOut.id = "0-0";
      handedOut.event = "forged";
    }
    assert.deepEqual(await inbox.read(user, null, 10), [kept]);
  });

  cases.withInstance("ping resolves when the inbox has one", async (inbox) => {
    assert.ok(inbox.ping === undefined || typeof inbox.ping === "function", "ping is optional but must be a method");
    await inbox.ping?.();
  });
}

function registerInboxCursorCases(cases: InboxCases): void {
  cases.withInstance("each device has its own cursor", async (inbox) => {
    const user = freshUser();
    const [first, second] = await appendSequence(inbox, user, 2);
    const phone = deviceOf(user, "phone");
    const laptop = deviceOf(user, "laptop");
    assert.equal(await inbox.cursor(phone), null);
    await inbox.ack(phone, second!.id);
    assert.equal(await inbox.cursor(phone), second!.id);
    assert.equal(await inbox.cursor(laptop), null);
    await inbox.ack(laptop, first!.id);
    assert.equal(await inbox.cursor(laptop), first!.id);
    assert.equal(await inbox.cursor(phone), second!.id);
  });

  cases.withInstance("a cursor never moves back", async (inbox) => {
    const user = freshUser();
    const [first, , third] = await appendSequence(inbox, user, 3);
    const phone = deviceOf(user, "phone");
    await inbox.ack(phone, third!.id);
    await inbox.ack(phone, first!.id);
    assert.equal(await inbox.cursor(phone), third!.id);
    await inbox.ack(phone, third!.id);
    assert.equal(await inbox.cursor(phone), third!.id);
  });

  // `ack`: "moves the device's cursor forward", in the order `compareInboxIds`
  // gives: "<ms>-10" is after "<ms>-9", as it is to `read`.
  cases.withInstance("ack compares ids as numbers, not as text", async (inbox) => {
    const user = freshUser();
    const [message] = await appendSequence(inbox, user, 1);
    const ms = message!.id.split("-")[0]!;
    const phone = deviceOf(user, "phone");
    await inbox.ack(phone, `${ms}-9`);
    await inbox.ack(phone, `${ms}-10`);
    assert.equal(await inbox.cursor(phone), `${ms}-10`, "the cursor moved forward from -9 to -10");
    await inbox.ack(phone, `${ms}-9`);
    assert.equal(await inbox.cursor(phone), `${ms}-10`, "the cursor did not move back from -10 to -9");
    const laptop = deviceOf(user, "laptop");
    await inbox.ack(laptop, "999999999999-0");
    await inbox.ack(laptop, message!.id);
    assert.equal(await inbox.cursor(laptop), message!.id, "the cursor moved forward to a ms with more digits");
  });

  cases.withInstance("ack of an id that is not in the inbox still moves the cursor forward", async (inbox) => {
    const user = freshUser();
    const [first, second] = await appendSequence(inbox, user, 2);
    const phone = deviceOf(user, "phone");
    await inbox.ack(phone, first!.id);
    const [ms, seq] = second!.id.split("-");
    const absent = `${ms}-${Number(seq) + 7}`;
    await inbox.ack(phone, absent);
    assert.equal(await inbox.cursor(phone), absent);
  });

  cases.withInstance(
    "past maxCursorsPerUser the cursor moved longest ago is forgotten, and its device reads from the start",
    async (inbox) => {
      const user = freshUser();
      const [first, second] = await appendSequence(inbox, user, 2);
      const [laptop, phone, tablet, desk] = ["laptop", "phone", "tablet", "desk"].map((deviceId) => deviceOf(user, deviceId));
      for (const device of [laptop!, phone!, tablet!]) await inbox.ack(device, first!.id);
      // Moving a cursor makes it the newest; an ack that does not move it changes nothing.
      await inbox.ack(laptop!, second!.id);
      await inbox.ack(phone!, first!.id);
      await inbox.ack(desk!, second!.id);
      assert.equal(await inbox.cursor(phone!), null);
      assert.equal(await inbox.cursor(tablet!), first!.id);
      assert.equal(await inbox.cursor(laptop!), second!.id);
      assert.equal(await inbox.cursor(desk!), second!.id);
      assert.deepEqual(ids(await inbox.read(user, await inbox.cursor(phone!), 10)), ids([first!, second!]));
    },
    { factoryOptions: { maxCursorsPerUser: 3 } },
  );
}
