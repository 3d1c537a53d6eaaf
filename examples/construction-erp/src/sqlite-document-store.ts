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
  type DocumentKey,
  type DocumentStore,
  type DocumentStoreOptions,
  type MutationRef,
  type MutationState,
} from "@truss/core";
import type { DocumentData, DocumentVersion } from "@truss/protocol";
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
 * and a commit records it under its writer (`document_mutations`: mutation
 * id → writer, version and when; `document_mutation_writers`: each writer's
 * newest record), then forgets as `DocumentStore.compareAndSet` says: the
 * writer's records older than `mutationTtlMs` and, oldest first, past
 * `maxMutations`; writers idle past the TTL, and past `maxMutationWriters`
 * the least recently committed, whole. What the caps forgot leaves a
 * horizon per writer (`document_mutation_writer_horizons`), so a mutation
 * made before it is reported `expired` rather than `new`; past their own
 * cap the oldest horizons raise the document's (`document_mutation_horizons`,
 * which applies to every writer). Tables are created with `CREATE TABLE IF
 * NOT EXISTS`, so a database from before mutation ids gains them on open; a
 * database from before records were kept per writer gains the `writer`
 * column, and its records (without a writer) are still found and are
 * forgotten past the TTL.
 *
 * @throws RangeError when `maxHistory`, `maxHistoryBytes`, `maxMutations`, `maxMutationWriters` or `mutationTtlMs` is not a positive integer.
 */
export function sqliteDocumentStore(db: Database, options: SqliteDocumentStoreOptions = {}): SqliteDocumentStore {
  const now = options.now ?? Date.now;
  const { maxHistory, maxHistoryBytes, maxMutations, maxMutationWriters, maxMutationHorizons, mutationTtlMs } = resolveDocumentStoreOptions(
    "sqliteDocumentStore",
    options,
  );

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
      -- NULL only for records made before they were kept per writer.
      writer      TEXT,
      PRIMARY KEY (company_id, type, id, mutation_id)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS document_mutations_by_age
      ON document_mutations (company_id, type, id, recorded_at, version);
    CREATE TABLE IF NOT EXISTS document_mutation_writers (
      company_id TEXT NOT NULL,
      type       TEXT NOT NULL,
      id         TEXT NOT NULL,
      writer     TEXT NOT NULL,
      newest     INTEGER NOT NULL,
      PRIMARY KEY (company_id, type, id, writer)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS document_mutation_writers_by_age
      ON document_mutation_writers (company_id, type, id, newest);
    CREATE TABLE IF NOT EXISTS document_mutation_writer_horizons (
      company_id TEXT NOT NULL,
      type       TEXT NOT NULL,
      id         TEXT NOT NULL,
      writer     TEXT NOT NULL,
      horizon    INTEGER NOT NULL,
      PRIMARY KEY (company_id, type, id, writer)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS document_mutation_writer_horizons_by_age
      ON document_mutation_writer_horizons (company_id, type, id, horizon);
    CREATE TABLE IF NOT EXISTS document_mutation_horizons (
      company_id       TEXT NOT NULL,
      type             TEXT NOT NULL,
      id               TEXT NOT NULL,
      forgotten_before INTEGER NOT NULL,
      PRIMARY KEY (company_id, type, id)
    ) WITHOUT ROWID;
  `);
  const mutationColumns = db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('document_mutations')").all();
  if (!mutationColumns.some((column) => column.name === "writer")) db.exec("ALTER TABLE document_mutations ADD COLUMN writer TEXT");
  db.exec(
    "CREATE INDEX IF NOT EXISTS document_mutations_by_writer ON document_mutations (company_id, type, id, writer, recorded_at, version)",
  );

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
  // The later of the document's horizon and the writer's.
  const selectForgottenBefore = db.prepare<[WriterParams], { forgotten_before: number | null }>(
    `SELECT MAX(horizon) AS forgotten_before FROM (
       SELECT forgotten_before AS horizon FROM document_mutation_horizons WHERE company_id = @companyId AND type = @type AND id = @id
       UNION ALL
       SELECT horizon FROM document_mutation_writer_horizons
       WHERE company_id = @companyId AND type = @type AND id = @id AND writer = @writer
     )`,
  );
  const insertMutation = db.prepare(
    `INSERT INTO document_mutations (company_id, type, id, mutation_id, version, recorded_at, writer) VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  const touchWriter = db.prepare(
    `INSERT INTO document_mutation_writers (company_id, type, id, writer, newest) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (company_id, type, id, writer) DO UPDATE SET newest = MAX(newest, excluded.newest)`,
  );
  const deleteExpiredOwn = db.prepare(
    `DELETE FROM document_mutations WHERE company_id = ? AND type = ? AND id = ? AND writer = ? AND recorded_at < ?`,
  );
  // A writer's records past its cap are all but its newest `maxMutations`, by
  // record time and, within one millisecond, by the version they committed.
  const overCap = `SELECT mutation_id, recorded_at FROM document_mutations
     WHERE company_id = @companyId AND type = @type AND id = @id AND writer = @writer
     ORDER BY recorded_at DESC, version DESC LIMIT -1 OFFSET @keep`;
  const newestOverCap = db.prepare<[WriterParams & { keep: number }], { newest: number | null }>(
    `SELECT MAX(recorded_at) AS newest FROM (${overCap})`,
  );
  const deleteOverCap = db.prepare<[WriterParams & { keep: number }]>(
    `DELETE FROM document_mutations WHERE company_id = @companyId AND type = @type AND id = @id
     AND mutation_id IN (SELECT mutation_id FROM (${overCap}))`,
  );
  const raiseWriterHorizon = db.prepare(
    `INSERT INTO document_mutation_writer_horizons (company_id, type, id, writer, horizon) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (company_id, type, id, writer) DO UPDATE SET horizon = MAX(horizon, excluded.horizon)`,
  );
  // The least recently committed writers first, never the one committing now.
  const oldestWriters = db.prepare<[string, string, string, string, number], { writer: string; newest: number }>(
    `SELECT writer, newest FROM document_mutation_writers WHERE company_id = ? AND type = ? AND id = ? AND writer <> ?
     ORDER BY newest, writer LIMIT ?`,
  );
  const countWriters = db.prepare<[string, string, string], { count: number }>(
    `SELECT COUNT(*) AS count FROM document_mutation_writers WHERE company_id = ? AND type = ? AND id = ?`,
  );
  const deleteWriterRecords = db.prepare(`DELETE FROM document_mutations WHERE company_id = ? AND type = ? AND id = ? AND writer = ?`);
  const deleteWriter = db.prepare(`DELETE FROM document_mutation_writers WHERE company_id = ? AND type = ? AND id = ? AND writer = ?`);
  const deleteExpiredHorizons = db.prepare(
    `DELETE FROM document_mutation_writer_horizons WHERE company_id = ? AND type = ? AND id = ? AND horizon < ?`,
  );
  const countHorizons = db.prepare<[string, string, string], { count: number }>(
    `SELECT COUNT(*) AS count FROM document_mutation_writer_horizons WHERE company_id = ? AND type = ? AND id = ?`,
  );
  const oldestHorizons = db.prepare<[string, string, string, number], { writer: string; horizon: number }>(
    `SELECT writer, horizon FROM document_mutation_writer_horizons WHERE company_id = ? AND type = ? AND id = ? ORDER BY horizon, writer LIMIT ?`,
  );
  const deleteHorizon = db.prepare(
    `DELETE FROM document_mutation_writer_horizons WHERE company_id = ? AND type = ? AND id = ? AND writer = ?`,
  );
  const raiseForgottenBefore = db.prepare(
    `INSERT INTO document_mutation_horizons (company_id, type, id, forgotten_before) VALUES (?, ?, ?, ?)
     ON CONFLICT (company_id, type, id) DO UPDATE SET forgotten_before = MAX(forgotten_before, excluded.forgotten_before)`,
  );
  // Records from before they were kept per writer: only ever forgotten, past the TTL.
  const deleteExpiredLegacy = db.prepare(
    `DELETE FROM document_mutations WHERE company_id = ? AND type = ? AND id = ? AND writer IS NULL AND recorded_at < ?`,
  );
  const listAll = db.prepare<[string], VersionRow>(`SELECT ${columns} FROM documents WHERE company_id = ? ORDER BY type, id`);
  const listOfType = db.prepare<[string, string], VersionRow>(
    `SELECT ${columns} FROM documents WHERE company_id = ? AND type = ? ORDER BY id`,
  );

  /** What the database knows of a mutation; run inside a transaction, so both reads see one state. */
  const stateOf = (key: DocumentKey, mutation: MutationRef, at: number): MutationState => {
    const recorded = selectMutation.get(key.companyId, key.type, key.id, mutation.id);
    if (recorded) return { state: "committed", version: recorded.version };
    const forgottenBefore = selectForgottenBefore.get({ ...documentParams(key), writer: mutation.writer })?.forgotten_before ?? 0;
    return mutationMayBeForgotten(mutation.madeAt, forgottenBefore, at, mutationTtlMs) ? { state: "expired" } : { state: "new" };
  };

  /** Records a committed mutation, then forgets what the TTL and the caps leave out (see `DocumentStore.compareAndSet`). */
  const record = (key: DocumentKey, mutation: MutationRef, version: number, at: number) => {
    const { companyId, type, id } = key;
    const { writer } = mutation;
    const cutoff = at - mutationTtlMs;
    insertMutation.run(companyId, type, id, mutation.id, version, at, writer);
    touchWriter.run(companyId, type, id, writer, at);

    // 1. The writer's own records past the TTL, then past its cap, oldest first.
    deleteExpiredOwn.run(companyId, type, id, writer, cutoff);
    const own = { ...documentParams(key), writer, keep: maxMutations };
    const pushedOut = newestOverCap.get(own)?.newest ?? null;
    if (pushedOut !== null) {
      deleteOverCap.run(own);
      raiseWriterHorizon.run(companyId, type, id, writer, pushedOut);
    }

    // 2. Writers idle past the TTL, then the least recently committed past maxMutationWriters.
    const surplusWriters = Math.max(0, countWriters.get(companyId, type, id)!.count - maxMutationWriters);
    for (const other of oldestWriters.all(companyId, type, id, writer, surplusWriters + 8)) {
      const idle = other.newest < cutoff;
      if (!idle && countWriters.get(companyId, type, id)!.count <= maxMutationWriters) break;
      deleteWriterRecords.run(companyId, type, id, other.writer);
      deleteWriter.run(companyId, type, id, other.writer);
      // An idle writer needs no horizon: the TTL answers for all its mutations.
      if (!idle) raiseWriterHorizon.run(companyId, type, id, other.writer, other.newest);
    }

    // 3. Horizons past the TTL, then the oldest past their cap, into the document's.
    deleteExpiredHorizons.run(companyId, type, id, cutoff);
    const surplusHorizons = countHorizons.get(companyId, type, id)!.count - maxMutationHorizons;
    if (surplusHorizons > 0) {
      for (const oldest of oldestHorizons.all(companyId, type, id, surplusHorizons)) {
        deleteHorizon.run(companyId, type, id, oldest.writer);
        raiseForgottenBefore.run(companyId, type, id, oldest.horizon);
      }
    }

    deleteExpiredLegacy.run(companyId, type, id, cutoff);
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

/** Names one writer of one document in a statement's parameters. */
interface WriterParams {
  companyId: string;
  type: string;
  id: string;
  writer: string;
}

function documentParams({ companyId, type, id }: DocumentKey): { companyId: string; type: string; id: string } {
  return { companyId, type, id };
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
