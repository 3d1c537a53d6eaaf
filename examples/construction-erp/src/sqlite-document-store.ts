/**
 * A Truss {@link DocumentStore} on the ERP's own SQLite database: the latest
 * version of each document in `documents` (with a `version` column that the
 * compare-and-set checks), every kept version in `document_versions`, the
 * mutations each document remembers in `document_mutations`.
 *
 * @module
 */
import {
  mutationMayBeForgotten,
  resolveDocumentStoreOptions,
  type CompareAndSetResult,
  type DocumentData,
  type DocumentKey,
  type DocumentStore,
  type DocumentStoreOptions,
  type DocumentVersion,
  type MutationRef,
  type MutationState,
} from "@truss/core";
import type { Database } from "better-sqlite3";

/** Options of {@link sqliteDocumentStore}. */
export interface SqliteDocumentStoreOptions extends DocumentStoreOptions {
  /** Clock in epoch ms for `updatedAt` and mutation record times, for tests; default `Date.now`. */
  now?: () => number;
}

/** One row of the document list of a company. */
export interface DocumentSummary {
  type: string;
  id: string;
  version: number;
  updatedAt: number;
  updatedBy: string | null;
  /** The document's `title` field, when it has a string one. */
  title: string | null;
}

/** The store, plus a listing the core contract does not need but the ERP's REST API does. */
export interface SqliteDocumentStore extends DocumentStore {
  /** The latest version of every document of a company, optionally of one type, ordered by type and id. */
  list(companyId: string, type?: string): DocumentSummary[];
}

interface VersionRow {
  type: string;
  id: string;
  version: number;
  data: string;
  updated_at: number;
  updated_by: string | null;
}

/**
 * Creates the store's tables if they are missing and returns the store.
 *
 * Company, type and id are separate key columns, so no id can make two
 * documents collide. The compare-and-set runs in one `BEGIN IMMEDIATE`
 * transaction: the version check and both writes happen under SQLite's write
 * lock, so two connections on one database file (two processes, or the two
 * handles the conformance suite races) can never both commit the same
 * version. History beyond `maxHistory` versions, or beyond `maxHistoryBytes`
 * of their data (UTF-8 bytes of the JSON), is deleted in the same
 * transaction, oldest first; the latest version is always kept.
 *
 * A write's mutation is checked in the same transaction, before the version,
 * and a commit records it (`document_mutations`: mutation id → version and
 * when), then deletes the document's records older than `mutationTtlMs` and,
 * oldest first, those past `maxMutations`. The newest record time the cap
 * deleted is kept per document in `document_mutation_horizons`, so a mutation
 * made before it is reported `expired` rather than `new`. Tables are created
 * with `CREATE TABLE IF NOT EXISTS`, so a database from before mutation ids
 * gains them on open.
 *
 * @throws RangeError when `maxHistory`, `maxHistoryBytes`, `maxMutations` or `mutationTtlMs` is not a positive integer.
 */
export function sqliteDocumentStore(db: Database, options: SqliteDocumentStoreOptions = {}): SqliteDocumentStore {
  const now = options.now ?? Date.now;
  const { maxHistory, maxHistoryBytes, maxMutations, mutationTtlMs } = resolveDocumentStoreOptions("sqliteDocumentStore", options);

  db.exec(`
    CREATE TABLE IF NOT EXISTS documents (
      company_id TEXT NOT NULL,
      type       TEXT NOT NULL,
      id         TEXT NOT NULL,
      version    INTEGER NOT NULL CHECK (version > 0),
      data       TEXT NOT NULL CHECK (json_valid(data)),
      updated_at INTEGER NOT NULL,
      updated_by TEXT,
      PRIMARY KEY (company_id, type, id)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS document_versions (
      company_id TEXT NOT NULL,
      type       TEXT NOT NULL,
      id         TEXT NOT NULL,
      version    INTEGER NOT NULL,
      data       TEXT NOT NULL,
      updated_at INTEGER NOT NULL,
      updated_by TEXT,
      PRIMARY KEY (company_id, type, id, version)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS document_mutations (
      company_id  TEXT NOT NULL,
      type        TEXT NOT NULL,
      id          TEXT NOT NULL,
      mutation_id TEXT NOT NULL,
      version     INTEGER NOT NULL,
      recorded_at INTEGER NOT NULL,
      PRIMARY KEY (company_id, type, id, mutation_id)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS document_mutations_by_age
      ON document_mutations (company_id, type, id, recorded_at, version);
    CREATE TABLE IF NOT EXISTS document_mutation_horizons (
      company_id       TEXT NOT NULL,
      type             TEXT NOT NULL,
      id               TEXT NOT NULL,
      forgotten_before INTEGER NOT NULL,
      PRIMARY KEY (company_id, type, id)
    ) WITHOUT ROWID;
  `);

  const columns = "type, id, version, data, updated_at, updated_by";
  const selectLatest = db.prepare<[string, string, string], VersionRow>(
    `SELECT ${columns} FROM documents WHERE company_id = ? AND type = ? AND id = ?`,
  );
  const selectVersion = db.prepare<[string, string, string, number], VersionRow>(
    `SELECT ${columns} FROM document_versions WHERE company_id = ? AND type = ? AND id = ? AND version = ?`,
  );
  const selectHistory = db.prepare<[string, string, string, number], VersionRow>(
    `SELECT ${columns} FROM document_versions WHERE company_id = ? AND type = ? AND id = ? ORDER BY version DESC LIMIT ?`,
  );
  const insertLatest = db.prepare(
    `INSERT INTO documents (company_id, type, id, version, data, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  const updateLatest = db.prepare(
    `UPDATE documents SET version = ?, data = ?, updated_at = ?, updated_by = ?
     WHERE company_id = ? AND type = ? AND id = ? AND version = ?`,
  );
  const insertVersion = db.prepare(
    `INSERT INTO document_versions (company_id, type, id, version, data, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  const trimHistory = db.prepare(
    `DELETE FROM document_versions WHERE company_id = ? AND type = ? AND id = ? AND version <= ?`,
  );
  // The oldest version still kept: the first, going back from the latest,
  // whose data and everything newer fit in the byte cap (the latest when it
  // alone does not). Casting to BLOB makes length() count UTF-8 bytes.
  const oldestWithinBytes = db.prepare<[string, string, string, number], { version: number | null }>(
    `SELECT MIN(version) AS version FROM (
       SELECT version, SUM(length(CAST(data AS BLOB))) OVER (ORDER BY version DESC) AS bytes
       FROM document_versions WHERE company_id = ? AND type = ? AND id = ?
     ) WHERE bytes <= ?`,
  );
  const selectMutation = db.prepare<[string, string, string, string], { version: number }>(
    `SELECT version FROM document_mutations WHERE company_id = ? AND type = ? AND id = ? AND mutation_id = ?`,
  );
  const selectForgottenBefore = db.prepare<[string, string, string], { forgotten_before: number }>(
    `SELECT forgotten_before FROM document_mutation_horizons WHERE company_id = ? AND type = ? AND id = ?`,
  );
  const insertMutation = db.prepare(
    `INSERT INTO document_mutations (company_id, type, id, mutation_id, version, recorded_at) VALUES (?, ?, ?, ?, ?, ?)`,
  );
  const deleteExpiredMutations = db.prepare(
    `DELETE FROM document_mutations WHERE company_id = ? AND type = ? AND id = ? AND recorded_at < ?`,
  );
  // The records past the cap are all but the newest `maxMutations`, by
  // record time and, within one millisecond, by the version they committed.
  const overCap = `SELECT mutation_id, recorded_at FROM document_mutations
     WHERE company_id = @companyId AND type = @type AND id = @id
     ORDER BY recorded_at DESC, version DESC LIMIT -1 OFFSET @keep`;
  const newestOverCap = db.prepare<[OverCapParams], { newest: number | null }>(
    `SELECT MAX(recorded_at) AS newest FROM (${overCap})`,
  );
  const deleteOverCap = db.prepare<[OverCapParams]>(
    `DELETE FROM document_mutations WHERE company_id = @companyId AND type = @type AND id = @id
     AND mutation_id IN (SELECT mutation_id FROM (${overCap}))`,
  );
  const raiseForgottenBefore = db.prepare(
    `INSERT INTO document_mutation_horizons (company_id, type, id, forgotten_before) VALUES (?, ?, ?, ?)
     ON CONFLICT (company_id, type, id) DO UPDATE SET forgotten_before = MAX(forgotten_before, excluded.forgotten_before)`,
  );
  const listAll = db.prepare<[string], VersionRow>(`SELECT ${columns} FROM documents WHERE company_id = ? ORDER BY type, id`);
  const listOfType = db.prepare<[string, string], VersionRow>(
    `SELECT ${columns} FROM documents WHERE company_id = ? AND type = ? ORDER BY id`,
  );

  /** What the database knows of a mutation; run inside a transaction, so both reads see one state. */
  const stateOf = (key: DocumentKey, mutation: MutationRef, at: number): MutationState => {
    const recorded = selectMutation.get(key.companyId, key.type, key.id, mutation.id);
    if (recorded) return { state: "committed", version: recorded.version };
    const forgottenBefore = selectForgottenBefore.get(key.companyId, key.type, key.id)?.forgotten_before ?? 0;
    return mutationMayBeForgotten(mutation.madeAt, forgottenBefore, at, mutationTtlMs) ? { state: "expired" } : { state: "new" };
  };

  /** Records a committed mutation, then forgets those past the TTL and, oldest first, past the cap. */
  const record = (key: DocumentKey, mutation: MutationRef, version: number, at: number) => {
    insertMutation.run(key.companyId, key.type, key.id, mutation.id, version, at);
    deleteExpiredMutations.run(key.companyId, key.type, key.id, at - mutationTtlMs);
    const overCapParams = { companyId: key.companyId, type: key.type, id: key.id, keep: maxMutations };
    const newest = newestOverCap.get(overCapParams)?.newest ?? null;
    if (newest === null) return;
    deleteOverCap.run(overCapParams);
    raiseForgottenBefore.run(key.companyId, key.type, key.id, newest);
  };

  const readMutation = db.transaction((key: DocumentKey, mutation: MutationRef) => stateOf(key, mutation, now()));

  const commit = db.transaction(
    (
      key: DocumentKey,
      expectedVersion: number,
      json: string,
      updatedBy: string | null,
      mutation: MutationRef | undefined,
    ): CompareAndSetResult => {
      const updatedAt = now();
      const latest = selectLatest.get(key.companyId, key.type, key.id);
      const state = mutation ? stateOf(key, mutation, updatedAt) : null;
      if (state && state.state !== "new") return { ok: false, current: latest ? toVersion(latest) : null, mutation: state };
      if ((latest?.version ?? 0) !== expectedVersion) {
        return { ok: false, current: latest ? toVersion(latest) : null };
      }
      const version = expectedVersion + 1;
      if (latest) updateLatest.run(version, json, updatedAt, updatedBy, key.companyId, key.type, key.id, expectedVersion);
      else insertLatest.run(key.companyId, key.type, key.id, version, json, updatedAt, updatedBy);
      insertVersion.run(key.companyId, key.type, key.id, version, json, updatedAt, updatedBy);
      const oldestKept = oldestWithinBytes.get(key.companyId, key.type, key.id, maxHistoryBytes)?.version ?? version;
      trimHistory.run(key.companyId, key.type, key.id, Math.max(version - maxHistory, oldestKept - 1));
      if (mutation) record(key, mutation, version, updatedAt);
      return { ok: true, document: { type: key.type, id: key.id, version, data: JSON.parse(json) as DocumentData, updatedAt, updatedBy } };
    },
  );

  return {
    async get(key) {
      const row = selectLatest.get(key.companyId, key.type, key.id);
      return row ? toVersion(row) : null;
    },

    async getVersion(key, version) {
      const row = selectVersion.get(key.companyId, key.type, key.id, version);
      return row ? toVersion(row) : null;
    },

    async compareAndSet(key, expectedVersion, data, updatedBy, mutation) {
      // Serialised before the transaction, so data that is not JSON rejects with nothing written.
      const json = JSON.stringify(data);
      if (typeof json !== "string" || !json.startsWith("{")) throw new TypeError("A document's data must be a JSON object.");
      return commit.immediate(key, expectedVersion, json, updatedBy, mutation);
    },

    async mutation(key, mutation) {
      return readMutation(key, mutation);
    },

    async history(key, limit) {
      if (limit <= 0) return [];
      return selectHistory.all(key.companyId, key.type, key.id, limit).map(toVersion);
    },

    async ping() {
      db.prepare("SELECT 1").get();
    },

    list(companyId, type) {
      const rows = type === undefined ? listAll.all(companyId) : listOfType.all(companyId, type);
      return rows.map((row) => {
        const { data, ...rest } = toVersion(row);
        return { ...rest, title: typeof data.title === "string" ? data.title : null };
      });
    },
  };
}

/** Selects a document's mutation records past the newest `keep`. */
interface OverCapParams {
  companyId: string;
  type: string;
  id: string;
  keep: number;
}

/** Rows hold JSON text, so every read hands out a fresh object nobody else shares. */
function toVersion(row: VersionRow): DocumentVersion {
  return {
    type: row.type,
    id: row.id,
    version: row.version,
    data: JSON.parse(row.data) as DocumentData,
    updatedAt: row.updated_at,
    updatedBy: row.updated_by,
  };
}
