import assert from "node:assert/strict";
import { hasUndeliveredCalls, type InboxOptions, type InboxStore, type UndeliveredClaim, type UserKey } from "@truss/core";
import { sleep } from "./fixtures.js";
import { deviceOf, freshUser } from "./inbox-fixtures.js";
import { caseRegistrar } from "./registrar.js";
import type { Factory, TestFunction } from "./runner.js";
import type { InboxSuiteOptions } from "./inbox.js";

/** An inbox store with undelivered calls, as the cases use it. */
type UndeliveredInbox = InboxStore & Required<Pick<InboxStore, "claimUndelivered" | "settleUndelivered">>;

/** The delay the cases give a call: long enough that a claim right after the append finds it not yet due. */
const AFTER_MS = 300;
/** Waits past {@link AFTER_MS} with room for a store whose clock is its server's. */
const PAST_DUE_MS = 450;
/** A claim's limit large enough that calls other cases left on a shared backend never crowd out this case's. */
const LIMIT = 1000;
const LEASE_MS = 10_000;
const CASE_TIMEOUT_MS = 15_000;

/**
 * Registers the conformance cases of an {@link InboxStore}'s undelivered
 * calls (`claimUndelivered`, `settleUndelivered` and `append`'s
 * `undeliveredAfterMs`) with `test`: a call is claimed once due, with its
 * message; a claim leases it, and a lease that runs out makes it claimable
 * again with the next attempt; settling forgets it or makes it due again; an
 * ack by any device of the user cancels the calls it covers; calls go with
 * messages the cap or the TTL drop; a duplicate append records none; two
 * claimers (with `sharedBackend`, on two handles) never get one call twice
 * within its lease. Cases on a shared backend ignore calls of other cases'
 * users, so they may run against one server with the rest of the suite.
 *
 * @example
 * inboxUndeliveredSuite(test, (options) => redisInboxStore({ redis, ...options }), { sharedBackend: true });
 */
export function inboxUndeliveredSuite(test: TestFunction, factory: Factory<InboxStore, InboxOptions>, options: InboxSuiteOptions = {}): void {
  const cases = caseRegistrar(test, async (factoryOptions: InboxOptions) => undeliveredInbox(await factory(factoryOptions)), options, {
    prefix: `${options.prefix ?? "InboxStore"} undelivered calls`,
    factoryOptions: {},
  });
  const settings = { timeoutMs: CASE_TIMEOUT_MS };

  cases.withInstance(
    "a call is claimed only once due, with its user, its message and attempt 1",
    async (inbox) => {
      const user = freshUser();
      const { message } = await inbox.append(user, "expense:rejected", { expenseId: "e-1" }, { undeliveredAfterMs: AFTER_MS });
      assert.deepEqual(await claimsOf(inbox, [user]), [], "not due yet");
      await sleep(PAST_DUE_MS);
      assert.deepEqual(await claimsOf(inbox, [user]), [{ user, message, attempt: 1 }]);
    },
    settings,
  );

  cases.withInstance(
    "a claimed call is leased: not claimed again within the lease, claimed again with the next attempt after it",
    async (inbox) => {
      const user = freshUser();
      const { message } = await inbox.append(user, "expense:rejected", {}, { undeliveredAfterMs: 1 });
      await sleep(50);
      assert.deepEqual(await claimsOf(inbox, [user], 300), [{ user, message, attempt: 1 }]);
      assert.deepEqual(await claimsOf(inbox, [user], 300), [], "leased");
      await sleep(PAST_DUE_MS);
      assert.deepEqual(await claimsOf(inbox, [user]), [{ user, message, attempt: 2 }], "the lease ran out");
    },
    settings,
  );

  cases.withInstance(
    "settling done forgets the call; a retry makes it due again after retryAfterMs",
    async (inbox) => {
      const [done, retried] = [freshUser(), freshUser()];
      await inbox.append(done, "expense:rejected", {}, { undeliveredAfterMs: 1 });
      await inbox.append(retried, "expense:rejected", {}, { undeliveredAfterMs: 1 });
      await sleep(50);
      const claims = await claimsOf(inbox, [done, retried], 50);
      assert.equal(claims.length, 2);
      await inbox.settleUndelivered(claims.find((claim) => claim.user.userId === done.userId)!, "done");
      await inbox.settleUndelivered(claims.find((claim) => claim.user.userId === retried.userId)!, { retryAfterMs: AFTER_MS });
      await sleep(150);
      assert.deepEqual(await claimsOf(inbox, [done, retried]), [], "the lease ran out, but nothing is due before the retry");
      await sleep(PAST_DUE_MS);
      assert.deepEqual(
        (await claimsOf(inbox, [done, retried])).map((claim) => [claim.user.userId, claim.attempt]),
        [[retried.userId, 2]],
      );
    },
    settings,
  );

  cases.withInstance(
    "an ack by any device of the user cancels the calls of the messages it covers, and no others",
    async (inbox) => {
      const user = freshUser();
      const other = freshUser({ companyId: user.companyId });
      const sent = [];
      for (let index = 0; index < 3; index++) sent.push((await inbox.append(user, "expense:rejected", { index }, { undeliveredAfterMs: AFTER_MS })).message);
      const untouched = (await inbox.append(other, "expense:rejected", {}, { undeliveredAfterMs: AFTER_MS })).message;
      await inbox.ack(deviceOf(user, "laptop"), sent[1]!.id);
      await sleep(PAST_DUE_MS);
      const claims = await claimsOf(inbox, [user, other]);
      assert.deepEqual(claims.map((claim) => claim.message.id).sort(), [sent[2]!.id, untouched.id].sort());
    },
    settings,
  );

  cases.withInstance(
    "an ack of a claimed call cancels it: a retry settled after the ack changes nothing",
    async (inbox) => {
      const user = freshUser();
      const { message } = await inbox.append(user, "expense:rejected", {}, { undeliveredAfterMs: 1 });
      await sleep(50);
      const [claim] = await claimsOf(inbox, [user], 50);
      assert.ok(claim);
      await inbox.ack(deviceOf(user, "phone"), message.id);
      await inbox.settleUndelivered(claim, { retryAfterMs: 1 });
      await sleep(200);
      assert.deepEqual(await claimsOf(inbox, [user]), []);
    },
    settings,
  );

  cases.withInstance(
    "a stale settle, after the lease ran out and another claim took the call, changes nothing",
    async (inbox) => {
      const user = freshUser();
      await inbox.append(user, "expense:rejected", {}, { undeliveredAfterMs: 1 });
      await sleep(50);
      const [stale] = await claimsOf(inbox, [user], 100);
      await sleep(250);
      const [current] = await claimsOf(inbox, [user], LEASE_MS);
      assert.equal(current?.attempt, 2);
      await inbox.settleUndelivered(stale!, "done");
      await inbox.settleUndelivered(current!, { retryAfterMs: 1 });
      await sleep(100);
      assert.deepEqual((await claimsOf(inbox, [user])).map((claim) => claim.attempt), [3], "the current claim's retry stands");
    },
    settings,
  );

  cases.withInstance(
    "calls go with the messages the length cap drops",
    async (inbox) => {
      const user = freshUser();
      const sent = [];
      for (let index = 0; index < 4; index++) sent.push((await inbox.append(user, "expense:rejected", { index }, { undeliveredAfterMs: AFTER_MS })).message);
      await sleep(PAST_DUE_MS);
      const claims = await claimsOf(inbox, [user]);
      assert.deepEqual(claims.map((claim) => claim.message.id).sort(), sent.slice(2).map((message) => message.id).sort());
    },
    { ...settings, factoryOptions: { maxLength: 2 } },
  );

  cases.withInstance(
    "calls of messages past the TTL are never claimed",
    async (inbox) => {
      const user = freshUser();
      await inbox.append(user, "expense:rejected", {}, { undeliveredAfterMs: 500 });
      await sleep(700);
      assert.deepEqual(await claimsOf(inbox, [user]), []);
    },
    { ...settings, factoryOptions: { ttlMs: 300 } },
  );

  cases.withInstance(
    "an append without undeliveredAfterMs records no call, nor does a duplicate append",
    async (inbox) => {
      const user = freshUser();
      await inbox.append(user, "expense:rejected", {});
      const { message } = await inbox.append(user, "expense:rejected", {}, { idempotencyKey: "k-1", undeliveredAfterMs: 1 });
      const repeat = await inbox.append(user, "expense:rejected", {}, { idempotencyKey: "k-1", undeliveredAfterMs: 1 });
      assert.equal(repeat.duplicate, true);
      await sleep(50);
      assert.deepEqual((await claimsOf(inbox, [user])).map((claim) => claim.message.id), [message.id]);
    },
    settings,
  );

  cases.withInstance(
    "a claim takes at most its limit",
    async (inbox) => {
      const user = freshUser();
      for (let index = 0; index < 5; index++) await inbox.append(user, "expense:rejected", { index }, { undeliveredAfterMs: 1 });
      await sleep(50);
      // Other cases' leftovers may fill some of the limit; this case's calls are taken over several claims, never more than the limit at once.
      const seen = new Set<string>();
      for (let round = 0; round < 50 && seen.size < 5; round++) {
        const claims = await inbox.claimUndelivered(2, LEASE_MS);
        assert.ok(claims.length <= 2, `${claims.length} claims for a limit of 2`);
        for (const claim of claims) if (claim.user.userId === user.userId) seen.add(claim.message.id);
      }
      assert.equal(seen.size, 5);
    },
    settings,
  );

  cases.withInstance("a malformed undeliveredAfterMs is refused with a TypeError and nothing is stored", async (inbox) => {
    const user = freshUser();
    for (const undeliveredAfterMs of [0, -1, 1.5, Number.NaN, "100" as unknown as number]) {
      await assert.rejects(inbox.append(user, "expense:rejected", {}, { undeliveredAfterMs }), TypeError);
    }
    assert.deepEqual(await inbox.read(user, null, 10), []);
  });

  const concurrentClaims = async (handles: UndeliveredInbox[]) => {
    const users = Array.from({ length: 5 }, () => freshUser());
    const sent = new Set<string>();
    for (let index = 0; index < 50; index++) {
      const user = users[index % users.length]!;
      sent.add(`${user.userId} ${(await handles[index % handles.length]!.append(user, "expense:rejected", { index }, { undeliveredAfterMs: 1 })).message.id}`);
    }
    await sleep(50);
    const claimed: string[] = [];
    for (let round = 0; round < 50 && claimed.length < sent.size; round++) {
      const batches = await Promise.all(handles.flatMap((handle) => [handle.claimUndelivered(7, LEASE_MS), handle.claimUndelivered(7, LEASE_MS)]));
      for (const claim of batches.flat()) if (users.some((user) => user.userId === claim.user.userId)) claimed.push(`${claim.user.userId} ${claim.message.id}`);
    }
    assert.equal(new Set(claimed).size, claimed.length, "no call was claimed twice within its lease");
    assert.deepEqual(new Set(claimed), sent);
  };
  if (options.sharedBackend) {
    cases.withTwoHandles("two nodes claiming at once never get one call twice within its lease", (first, second) => concurrentClaims([first, second]), settings);
  } else {
    cases.withInstance("claims at once never get one call twice within its lease", (inbox) => concurrentClaims([inbox]), settings);
  }
}

/** The store, refused when it has no undelivered calls. */
function undeliveredInbox(inbox: InboxStore): UndeliveredInbox {
  assert.ok(hasUndeliveredCalls(inbox), "the inbox store has claimUndelivered() and settleUndelivered()");
  return inbox;
}

/** Claims every due call and keeps those of `users` (a shared backend holds other cases' too), in message order. */
async function claimsOf(inbox: UndeliveredInbox, users: readonly UserKey[], leaseMs = LEASE_MS): Promise<UndeliveredClaim[]> {
  const ours = (claim: UndeliveredClaim) => users.some((user) => user.companyId === claim.user.companyId && user.userId === claim.user.userId);
  const claims = (await inbox.claimUndelivered(LIMIT, leaseMs)).filter(ours);
  return claims.sort((a, b) => (a.message.id < b.message.id ? -1 : 1));
}
