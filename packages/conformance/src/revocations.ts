import assert from "node:assert/strict";
import type { RevocationRecord, RevocationStore, UserKey } from "@truss/core";
import { sleep, uniqueId } from "./fixtures.js";
import { freshUser } from "./inbox-fixtures.js";
import { caseRegistrar, type CaseRegistrar } from "./registrar.js";
import { afterRestartEmpty, type RestartEmpty } from "./restart.js";
import type { Factory, SuiteOptions, TestFunction } from "./runner.js";

/** Capabilities of the revocation store under test, and the suite's hooks. */
export interface RevocationSuiteOptions extends SuiteOptions<RevocationStore> {
  /**
   * Calling the factory twice gives two handles on the same data, as two
   * engine nodes sharing one Redis would hold. Enables the cases where one
   * handle reads what the other added.
   */
  sharedBackend?: boolean;
  /**
   * Makes the store lose all its records, as a restart of a store that keeps
   * nothing on disk does, and gives the handle to use after it (see
   * {@link RestartEmpty}). Enables the case where a node's cursor from
   * before the loss must read the new records from the first one kept.
   *
   * @example
   * { restartEmpty: () => memoryRevocationStore() }
   */
  restartEmpty?: RestartEmpty<RevocationStore>;
}

type RevocationCases = CaseRegistrar<RevocationStore, void>;

/** A lifetime long enough that nothing expires during a case that does not wait for expiry. */
const LONG_TTL_MS = 60 * 60 * 1000;
/** A lifetime the expiry cases wait out. */
const SHORT_TTL_MS = 300;

/**
 * Registers the {@link RevocationStore} conformance cases with `test`. The
 * store is created by `factory` once per case (twice for shared-backend
 * cases), and every case uses fresh random company and user ids, so a shared
 * backend may hold other cases' records: the log cases read only their own.
 *
 * @example
 * revocationStoreSuite(test, () => redisRevocationStore({ redis }), { sharedBackend: true });
 */
export function revocationStoreSuite(test: TestFunction, factory: Factory<RevocationStore>, options: RevocationSuiteOptions = {}): void {
  const cases = caseRegistrar(test, factory, options, { prefix: "RevocationStore", factoryOptions: undefined });
  registerUserCases(cases);
  registerLogCases(cases);
  registerExpiryCases(cases);
  registerCopyCases(cases);
  if (options.restartEmpty) registerRestartCases(cases, options.restartEmpty, options.teardown);
  if (options.sharedBackend) registerSharedBackendCases(cases);
}

function registerUserCases(cases: RevocationCases): void {
  cases.withInstance("forUser returns what add kept, as it was given", async (store) => {
    const user = freshUser();
    const record = disconnect(user, { error: { code: "FORBIDDEN", message: "You left this company." } });
    await store.add(record);
    assert.deepEqual(await store.forUser(user), [record]);
  });

  cases.withInstance("forUser of a user without revocations is empty", async (store) => {
    assert.deepEqual(await store.forUser(freshUser()), []);
  });

  cases.withInstance("a user's disconnect and each revoked topic are kept side by side", async (store) => {
    const user = freshUser();
    const records = [disconnect(user), unsubscribe(user, "project:p1"), unsubscribe(user, "project:p2")];
    for (const record of records) await store.add(record);
    assert.deepEqual(sorted(await store.forUser(user)), sorted(records));
  });

  cases.withInstance("a newer record of the same kind and topic replaces an older one, never the other way round", async (store) => {
    const user = freshUser();
    const at = Date.now();
    const older = disconnect(user, { at: at - 1000, error: { code: "ACCESS_REVOKED", message: "older" } });
    const newer = disconnect(user, { at, error: { code: "AUTH_TOKEN_EXPIRED", message: "newer" } });
    await store.add(older);
    await store.add(newer);
    assert.deepEqual(await store.forUser(user), [newer]);
    // Added late (a node storing a revocation it could not store before): the newer stays.
    await store.add(disconnect(user, { at: at - 500, error: { code: "FORBIDDEN", message: "late" } }));
    assert.deepEqual(await store.forUser(user), [newer]);
    const topicOlder = unsubscribe(user, "project:p1", { at: at - 1000 });
    const topicNewer = unsubscribe(user, "project:p1", { at });
    await store.add(topicNewer);
    await store.add(topicOlder);
    assert.deepEqual(sorted(await store.forUser(user)), sorted([newer, topicNewer]));
  });

  cases.withInstance("records never reach another user, the same user id in another company, or ids that spell each other", async (store) => {
    const companyId = uniqueId("company");
    const userId = uniqueId("user");
    await store.add(disconnect({ companyId, userId }));
    assert.deepEqual(await store.forUser({ companyId, userId: `${userId}-2` }), []);
    assert.deepEqual(await store.forUser({ companyId: `${companyId}-2`, userId }), []);
    // Separators and hash-tag characters in ids must not let one pair name another.
    const tricky = [
      { companyId: `${companyId}:a`, userId: "b" },
      { companyId, userId: "a:b" },
      { companyId: `${companyId}{x}`, userId: "}y" },
      { companyId: `${companyId}%3A`, userId: "b" },
    ];
    for (const user of tricky) await store.add(disconnect(user, { error: { code: "ACCESS_REVOKED", message: JSON.stringify(user) } }));
    for (const user of tricky) {
      assert.deepEqual((await store.forUser(user)).map((record) => record.error.message), [JSON.stringify(user)], JSON.stringify(user));
    }
  });

  cases.withInstance("ping resolves when the store has one", async (store) => {
    assert.ok(store.ping === undefined || typeof store.ping === "function", "ping is optional but must be a method");
    await store.ping?.();
  });
}

function registerLogCases(cases: RevocationCases): void {
  cases.withInstance("since(null) reads every kept record, oldest first", async (store) => {
    const user = freshUser();
    const records = [disconnect(user), unsubscribe(user, "project:p1"), disconnect(freshUser({ companyId: user.companyId }))];
    for (const record of records) await store.add(record);
    const { records: read } = await readAll(store, null, 1000);
    assert.deepEqual(ofCompany(read, user.companyId), records);
  });

  cases.withInstance("since(cursor) reads only what was added after it, page by page, none twice and none skipped", async (store) => {
    const { cursor } = await readAll(store, null, 1000);
    const user = freshUser();
    const records = Array.from({ length: 7 }, (_, index) => unsubscribe(user, `project:p${index}`));
    for (const record of records) await store.add(record);
    const { records: paged, pages } = await readAll(store, cursor, 2);
    assert.ok(pages >= 4, `7 records in pages of 2 took ${pages} reads`);
    assert.deepEqual(ofCompany(paged, user.companyId), records);
    const { records: after } = await readAll(store, (await readAll(store, cursor, 1000)).cursor, 1000);
    assert.deepEqual(ofCompany(after, user.companyId), []);
  });

  cases.withInstance("every record is in the log, also one that replaced another for forUser", async (store) => {
    const user = freshUser();
    const first = disconnect(user, { at: Date.now() - 10 });
    const second = disconnect(user, { at: Date.now() });
    await store.add(first);
    await store.add(second);
    assert.deepEqual(ofCompany((await readAll(store, null, 1000)).records, user.companyId), [first, second]);
  });

  cases.withInstance("a cursor the store cannot place reads from the first record kept", async (store) => {
    const user = freshUser();
    const record = disconnect(user);
    await store.add(record);
    for (const cursor of ["not-a-cursor", "", "0", `${uniqueId("epoch")}:999999999`]) {
      assert.deepEqual(ofCompany((await readAll(store, cursor, 1000)).records, user.companyId), [record], JSON.stringify(cursor));
    }
  });

  cases.withInstance("limit 0 reads nothing and does not move the cursor past anything", async (store) => {
    const { cursor } = await readAll(store, null, 1000);
    const user = freshUser();
    const record = disconnect(user);
    await store.add(record);
    const page = await store.since(cursor, 0);
    assert.deepEqual(page.records, []);
    assert.deepEqual(ofCompany((await readAll(store, page.cursor, 1000)).records, user.companyId), [record]);
  });
}

function registerExpiryCases(cases: RevocationCases): void {
  cases.withInstance(
    "a record past its expiresAt is read by neither forUser nor since; a live one still is, and a cursor from before the expiry misses nothing after it",
    async (store) => {
      const user = freshUser();
      const shortLived = disconnect(user, { expiresAt: Date.now() + SHORT_TTL_MS });
      const longLived = unsubscribe(user, "project:p1");
      await store.add(shortLived);
      await store.add(longLived);
      // A node that read the log before the expiry, and holds its cursor.
      const { cursor } = await readAll(store, null, 1000);
      assert.deepEqual(sorted(await store.forUser(user)), sorted([shortLived, longLived]));
      await sleep(SHORT_TTL_MS + 100);
      assert.deepEqual(await store.forUser(user), [longLived]);
      assert.deepEqual(ofCompany((await readAll(store, null, 1000)).records, user.companyId), [longLived]);
      // Adding after expiry may trim the log; the node's cursor still reads what
      // was added after it (`since`: "records may be read twice, never skipped").
      const later = disconnect(freshUser({ companyId: user.companyId }));
      await store.add(later);
      assert.deepEqual(ofCompany((await readAll(store, cursor, 1000)).records, user.companyId), [later], "read from the cursor held since before the expiry");
      assert.deepEqual(ofCompany((await readAll(store, null, 1000)).records, user.companyId), [longLived, later]);
    },
    { timeoutMs: 10_000 },
  );
}

function registerCopyCases(cases: RevocationCases): void {
  // `RevocationStore`: records are copied in and out.
  cases.withInstance("a caller changing a record it added, or one it was handed, changes nothing stored", async (store) => {
    const user = freshUser();
    const record = disconnect(user);
    const kept = structuredClone(record);
    await store.add(record);
    record.expiresAt = 0;
    record.error.message = "changed by the caller after add";
    assert.deepEqual(await store.forUser(user), [kept]);
    const handedOut = [...(await store.forUser(user)), ...ofCompany((await readAll(store, null, 1000)).records, user.companyId)];
    assert.equal(handedOut.length, 2, "forUser and since each read the record");
    for (const read of handedOut) {
      read.expiresAt = 0;
      read.at = 0;
      read.error.message = "changed by the caller after a read";
    }
    assert.deepEqual(await store.forUser(user), [kept]);
    assert.deepEqual(ofCompany((await readAll(store, null, 1000)).records, user.companyId), [kept]);
  });
}

function registerRestartCases(cases: RevocationCases, restartEmpty: RestartEmpty<RevocationStore>, teardown: RevocationSuiteOptions["teardown"]): void {
  // `since`: "A cursor the store cannot place (another store's, or one from
  // before the store lost its data) reads from the first record kept".
  cases.withInstance(
    "a cursor from before the store lost its data reads the records added since from the first one",
    async (store) => {
      const user = freshUser();
      for (const topic of ["project:p1", "project:p2", "project:p3"]) await store.add(unsubscribe(user, topic));
      const { cursor } = await readAll(store, null, 1000);
      await afterRestartEmpty(store, undefined, restartEmpty, teardown, async (restarted) => {
        assert.deepEqual(await restarted.forUser(user), [], "the restart lost the records");
        const afterRestart = disconnect(user);
        await restarted.add(afterRestart);
        assert.deepEqual(ofCompany((await readAll(restarted, cursor, 1000)).records, user.companyId), [afterRestart]);
      });
    },
    { timeoutMs: 30_000 },
  );
}

function registerSharedBackendCases(cases: RevocationCases): void {
  cases.withTwoHandles("a record one handle added is read by the other, by forUser and by since", async (first, second) => {
    const { cursor } = await readAll(second, null, 1000);
    const user = freshUser();
    const record = disconnect(user);
    await first.add(record);
    assert.deepEqual(await second.forUser(user), [record]);
    assert.deepEqual(ofCompany((await readAll(second, cursor, 1000)).records, user.companyId), [record]);
  });

  cases.withTwoHandles("records added on both handles at once are all in the log", async (first, second) => {
    const user = freshUser();
    const records = Array.from({ length: 20 }, (_, index) => unsubscribe(user, `project:p${index}`));
    await Promise.all(records.map((record, index) => (index % 2 === 0 ? first : second).add(record)));
    const read = ofCompany((await readAll(first, null, 1000)).records, user.companyId);
    assert.deepEqual(sorted(read), sorted(records));
    assert.equal((await second.forUser(user)).length, 20);
  });
}

function disconnect(user: UserKey, overrides: Partial<RevocationRecord> = {}): RevocationRecord {
  const at = overrides.at ?? Date.now();
  return {
    kind: "disconnect",
    ...user,
    error: { code: "ACCESS_REVOKED", message: "Your access to this company was revoked." },
    at,
    expiresAt: at + LONG_TTL_MS,
    ...overrides,
  } as RevocationRecord;
}

function unsubscribe(user: UserKey, topic: string, overrides: Partial<RevocationRecord> = {}): RevocationRecord {
  const at = overrides.at ?? Date.now();
  return {
    kind: "unsubscribe",
    ...user,
    topic,
    error: { code: "ACCESS_REVOKED", message: `Your access to "${topic}" was revoked.` },
    at,
    expiresAt: at + LONG_TTL_MS,
    ...overrides,
  } as RevocationRecord;
}

/** Reads every page from `cursor` on, as an engine node catching up does. */
async function readAll(store: RevocationStore, cursor: string | null, limit: number): Promise<{ records: RevocationRecord[]; cursor: string; pages: number }> {
  const records: RevocationRecord[] = [];
  let pages = 0;
  for (;;) {
    const page = await store.since(cursor, limit);
    pages += 1;
    assert.ok(page.records.length <= limit, `a page of ${page.records.length} records for limit ${limit}`);
    assert.equal(typeof page.cursor, "string");
    records.push(...page.records);
    cursor = page.cursor;
    if (page.records.length < limit || limit === 0) return { records, cursor, pages };
  }
}

function ofCompany(records: RevocationRecord[], companyId: string): RevocationRecord[] {
  return records.filter((record) => record.companyId === companyId);
}

/** Records in a fixed order, for comparing sets. */
function sorted(records: RevocationRecord[]): RevocationRecord[] {
  const key = (record: RevocationRecord) => `${record.kind}:${record.kind === "unsubscribe" ? record.topic : ""}:${record.at}`;
  return [...records].sort((a, b) => key(a).localeCompare(key(b)));
}
