import assert from "node:assert/strict";
import { scopeKey, type ScopedPresenceEntry, type ScopedPresenceMember, type ScopedPresenceStore } from "@truss/core";
import { sleep, uniqueId } from "./fixtures.js";
import { caseRegistrar, type CaseRegistrar } from "./registrar.js";
import type { Factory, SuiteOptions, TestFunction } from "./runner.js";

/** Capabilities of the scoped presence store under test, and the suite's hooks. */
export interface ScopedPresenceSuiteOptions extends SuiteOptions<ScopedPresenceStore> {
  /**
   * Calling the factory twice gives two handles on the same data, as two
   * engine nodes sharing one Redis would hold. Enables the cases where both
   * handles race to report the same removal, which must be reported once.
   */
  sharedBackend?: boolean;
}

type Cases = CaseRegistrar<ScopedPresenceStore, void>;

/** A TTL long enough that nothing expires during a case that does not wait for expiry. */
const LONG_TTL_MS = 60_000;
/** Short enough to wait out, long enough for a networked store's round trips. */
const SHORT_TTL_MS = 150;
const PAST_SHORT_TTL_MS = 400;
const TTL_CASE_TIMEOUT_MS = 15_000;

/**
 * Registers the {@link ScopedPresenceStore} conformance cases with `test`.
 * The store is created by `factory` once per case (twice for shared-backend
 * cases), and every case uses fresh random company, scope and member ids.
 *
 * @example
 * scopedPresenceStoreSuite(test, () => redisScopedPresenceStore({ redis }), { sharedBackend: true });
 */
export function scopedPresenceStoreSuite(test: TestFunction, factory: Factory<ScopedPresenceStore>, options: ScopedPresenceSuiteOptions = {}): void {
  const cases = caseRegistrar(test, factory, options, { prefix: "ScopedPresenceStore", factoryOptions: undefined });
  registerMembershipCases(cases);
  registerTtlCases(cases);
  if (options.sharedBackend) registerSharedBackendCases(cases);
}

/** A fresh scope (a document, whose type and id carry `:` to test the keys) of a fresh company. */
function freshScope(): { companyId: string; scope: string } {
  return { companyId: uniqueId("company"), scope: scopeKey({ type: "site:report", id: uniqueId("r:1") }) };
}

/** A member joining now, with a state. */
function member(overrides: Partial<ScopedPresenceMember> = {}): ScopedPresenceMember {
  const at = Date.now();
  return { memberId: uniqueId("socket"), userId: uniqueId("user"), deviceId: uniqueId("device"), state: { editing: "notes", cursor: [3, 14] }, joinedAt: at, updatedAt: at, ...overrides };
}

function entry(where: { companyId: string; scope: string }, who: ScopedPresenceMember): ScopedPresenceEntry {
  return { companyId: where.companyId, scope: where.scope, member: who };
}

/** The entries that concern one scope: a shared backend's sweep also returns other cases' members. */
function inScope(where: { companyId: string; scope: string }, entries: readonly ScopedPresenceEntry[]): ScopedPresenceEntry[] {
  return entries.filter((swept) => swept.companyId === where.companyId && swept.scope === where.scope);
}

function registerMembershipCases(cases: Cases): void {
  cases.withInstance("put adds a member (true), again replaces it (false); list returns it with its state", async (store) => {
    const where = freshScope();
    const ann = member();
    assert.equal(await store.put(entry(where, ann), LONG_TTL_MS), true);
    assert.deepEqual(await store.list(where.companyId, where.scope), { members: [ann], total: 1 });
    const updated = { ...ann, state: { editing: "budget" }, updatedAt: ann.updatedAt + 5 };
    assert.equal(await store.put(entry(where, updated), LONG_TTL_MS), false);
    assert.deepEqual(await store.list(where.companyId, where.scope), { members: [updated], total: 1 });
  });

  cases.withInstance("remove returns the member once, then null; a scope nobody is in lists empty", async (store) => {
    const where = freshScope();
    const ann = member();
    assert.equal(await store.remove(where.companyId, where.scope, ann.memberId), null);
    await store.put(entry(where, ann), LONG_TTL_MS);
    assert.deepEqual(await store.remove(where.companyId, where.scope, ann.memberId), entry(where, ann));
    assert.equal(await store.remove(where.companyId, where.scope, ann.memberId), null);
    assert.deepEqual(await store.list(where.companyId, where.scope), { members: [], total: 0 });
  });

  cases.withInstance("list orders members by joinedAt, then memberId, and cuts at the limit with the total", async (store) => {
    const where = freshScope();
    const base = Date.now();
    const late = member({ memberId: "a-late", joinedAt: base + 10 });
    const early = member({ memberId: "z-early", joinedAt: base });
    const tieB = member({ memberId: "m-b", joinedAt: base + 5 });
    const tieA = member({ memberId: "m-a", joinedAt: base + 5 });
    for (const who of [late, early, tieB, tieA]) await store.put(entry(where, who), LONG_TTL_MS);
    assert.deepEqual((await store.list(where.companyId, where.scope)).members.map((listed) => listed.memberId), ["z-early", "m-a", "m-b", "a-late"]);
    assert.deepEqual(await store.list(where.companyId, where.scope, 2), { members: [early, tieA], total: 4 });
    // `list`: "at most `limit` of them".
    assert.deepEqual(await store.list(where.companyId, where.scope, 0), { members: [], total: 4 });
  });

  cases.withInstance("scopes and companies are isolated, even with the same scope key and member id", async (store) => {
    const where = freshScope();
    const otherCompany = { companyId: uniqueId("company"), scope: where.scope };
    const otherScope = { companyId: where.companyId, scope: scopeKey({ topic: uniqueId("project") }) };
    const ann = member();
    await store.put(entry(where, ann), LONG_TTL_MS);
    assert.equal(await store.put(entry(otherCompany, ann), LONG_TTL_MS), true);
    assert.deepEqual((await store.list(otherScope.companyId, otherScope.scope)).total, 0);
    assert.ok(await store.remove(otherCompany.companyId, otherCompany.scope, ann.memberId));
    assert.deepEqual((await store.list(where.companyId, where.scope)).members, [ann]);
  });

  cases.withInstance("a member's state is what was put, not an object changed afterwards", async (store) => {
    const where = freshScope();
    const ann = member({ state: { fields: ["notes"] } });
    await store.put(entry(where, ann), LONG_TTL_MS);
    (ann.state as { fields: string[] }).fields.push("budget");
    const [listed] = (await store.list(where.companyId, where.scope)).members;
    assert.deepEqual(listed?.state, { fields: ["notes"] });
    (listed!.state as { fields: string[] }).fields.push("crew");
    assert.deepEqual((await store.list(where.companyId, where.scope)).members[0]?.state, { fields: ["notes"] });
  });

  cases.withInstance("heartbeat of held members reports nothing; of members the store lost, re-adds and returns them", async (store) => {
    const where = freshScope();
    const ann = member();
    const ben = member();
    await store.put(entry(where, ann), LONG_TTL_MS);
    assert.deepEqual(await store.heartbeat([entry(where, ann)], LONG_TTL_MS), []);
    assert.deepEqual(await store.heartbeat([entry(where, ann), entry(where, ben)], LONG_TTL_MS), [entry(where, ben)]);
    assert.equal((await store.list(where.companyId, where.scope)).total, 2);
    assert.deepEqual(await store.heartbeat([], LONG_TTL_MS), []);
  });

  cases.withInstance("heartbeat of the same scope and member id in another company re-adds the member there, apart", async (store) => {
    const where = freshScope();
    const otherCompany = { companyId: uniqueId("company"), scope: where.scope };
    const ann = member();
    await store.put(entry(where, ann), LONG_TTL_MS);
    assert.deepEqual(await store.heartbeat([entry(otherCompany, ann)], LONG_TTL_MS), [entry(otherCompany, ann)]);
    assert.deepEqual(await store.list(otherCompany.companyId, otherCompany.scope), { members: [ann], total: 1 });
    assert.ok(await store.remove(where.companyId, where.scope, ann.memberId));
    assert.equal((await store.list(otherCompany.companyId, otherCompany.scope)).total, 1, "the other company's member stays");
  });

  cases.withInstance("ping resolves when the store has one", async (store) => {
    assert.ok(store.ping === undefined || typeof store.ping === "function", "ping is optional but must be a method");
    await store.ping?.();
  });
}

function registerTtlCases(cases: Cases): void {
  cases.withInstance(
    "a member not heartbeated expires: gone from the list at once, reported by one sweep",
    async (store) => {
      const where = freshScope();
      const lapsed = member();
      const kept = member();
      await store.put(entry(where, lapsed), SHORT_TTL_MS);
      await store.put(entry(where, kept), LONG_TTL_MS);
      await sleep(PAST_SHORT_TTL_MS);
      assert.deepEqual(await store.list(where.companyId, where.scope), { members: [kept], total: 1 });
      assert.deepEqual(inScope(where, await store.sweepExpired()), [entry(where, lapsed)]);
      assert.deepEqual(inScope(where, await store.sweepExpired()), []);
      assert.equal(await store.remove(where.companyId, where.scope, lapsed.memberId), null, "a swept member is not removed again");
    },
    { timeoutMs: TTL_CASE_TIMEOUT_MS },
  );

  cases.withInstance(
    "heartbeats and puts keep a member past its TTL",
    async (store) => {
      const where = freshScope();
      const ann = member();
      await store.put(entry(where, ann), 300);
      for (let beat = 0; beat < 5; beat += 1) {
        await sleep(100);
        if (beat % 2 === 0) assert.deepEqual(await store.heartbeat([entry(where, ann)], 300), []);
        else await store.put(entry(where, ann), 300);
      }
      assert.deepEqual(inScope(where, await store.sweepExpired()), []);
      assert.equal((await store.list(where.companyId, where.scope)).total, 1);
    },
    { timeoutMs: TTL_CASE_TIMEOUT_MS },
  );

  // `put`: "false when it replaced one (an expired one not swept yet included: nobody was told it left)".
  cases.withInstance(
    "a put over an expired member not swept yet replaces it (false), and no sweep reports it",
    async (store) => {
      const where = freshScope();
      const ann = member();
      await store.put(entry(where, ann), SHORT_TTL_MS);
      await sleep(PAST_SHORT_TTL_MS);
      const updated = { ...ann, state: { editing: "budget" }, updatedAt: ann.updatedAt + 5 };
      assert.equal(await store.put(entry(where, updated), LONG_TTL_MS), false);
      assert.deepEqual(inScope(where, await store.sweepExpired()), []);
      assert.deepEqual(await store.list(where.companyId, where.scope), { members: [updated], total: 1 });
    },
    { timeoutMs: TTL_CASE_TIMEOUT_MS },
  );

  // `heartbeat`: only a member "the store no longer holds" is added again and
  // returned; an expired one not swept yet is still held ("Resolves [] when
  // every member was still held").
  cases.withInstance(
    "a heartbeat of an expired member not swept yet keeps it without returning it, and no sweep reports it",
    async (store) => {
      const where = freshScope();
      const ann = member();
      await store.put(entry(where, ann), SHORT_TTL_MS);
      await sleep(PAST_SHORT_TTL_MS);
      assert.deepEqual(await store.heartbeat([entry(where, ann)], LONG_TTL_MS), []);
      assert.deepEqual(inScope(where, await store.sweepExpired()), []);
      assert.deepEqual((await store.list(where.companyId, where.scope)).members, [ann]);
    },
    { timeoutMs: TTL_CASE_TIMEOUT_MS },
  );

  cases.withInstance(
    "a heartbeat after a sweep took the member re-adds it and returns it",
    async (store) => {
      const where = freshScope();
      const ann = member();
      await store.put(entry(where, ann), SHORT_TTL_MS);
      await sleep(PAST_SHORT_TTL_MS);
      assert.equal(inScope(where, await store.sweepExpired()).length, 1);
      assert.deepEqual(await store.heartbeat([entry(where, ann)], LONG_TTL_MS), [entry(where, ann)]);
      assert.deepEqual((await store.list(where.companyId, where.scope)).members, [ann]);
    },
    { timeoutMs: TTL_CASE_TIMEOUT_MS },
  );
}

function registerSharedBackendCases(cases: Cases): void {
  cases.withTwoHandles("a member put through one handle is listed and removed through the other, once", async (first, second) => {
    const where = freshScope();
    const ann = member();
    await first.put(entry(where, ann), LONG_TTL_MS);
    assert.deepEqual((await second.list(where.companyId, where.scope)).members, [ann]);
    const removals = await Promise.all([first.remove(where.companyId, where.scope, ann.memberId), second.remove(where.companyId, where.scope, ann.memberId)]);
    assert.equal(removals.filter((removed) => removed !== null).length, 1);
  });

  cases.withTwoHandles(
    "racing sweeps on two handles report each expired member once",
    async (first, second) => {
      const where = freshScope();
      const crew = [member(), member(), member()];
      for (const who of crew) await first.put(entry(where, who), SHORT_TTL_MS);
      await sleep(PAST_SHORT_TTL_MS);
      const [a, b] = await Promise.all([first.sweepExpired(), second.sweepExpired()]);
      const swept = [...inScope(where, a), ...inScope(where, b)].map((removed) => removed.member.memberId).sort();
      assert.deepEqual(swept, crew.map((who) => who.memberId).sort());
    },
    { timeoutMs: TTL_CASE_TIMEOUT_MS },
  );
}
