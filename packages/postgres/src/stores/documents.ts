import {
  mutationMayBeForgotten,
  resolveDocumentStoreOptions,
  type CompareAndSetResult,
  type DocumentKey,
  type DocumentStore,
  type DocumentStoreOptions,
} from "@truss/core";
import type { DocumentVersion } from "@truss/protocol";
import { refuseNul, Statements, toNumber, type PostgresStoreConnection } from "./sql.js";

/** Options of {@link postgresDocumentStore}. */
export interface PostgresDocumentStoreOptions extends DocumentStoreOptions, PostgresStoreConnection {
  /** Clock in epoch ms for `updatedAt` and for mutation record times and their TTL, for tests. Default `Date.now`. */
  now?: () => number;
}

interface VersionRow {
  version: string;
  data: string;
  updated_at: string;
  updated_by: string | null;
}

interface CompareAndSetRow {
  outcome: number;
  current_version: string | null;
  current_data: string | null;
  current_updated_at: string | null;
  current_updated_by: string | null;
  committed_version: string | null;
}

/**
 * A {@link DocumentStore} on PostgreSQL, in the tables `migrate()` creates
 * (`documents`, `document_versions` and the `document_mutation*` tables of the
 * schema). Each document is a row of `documents` with its latest version, so
 * an application can read it with plain SQL; its history, trimmed to
 * `maxHistory` versions and `maxHistoryBytes` bytes, is in
 * `document_versions`. A compare-and-set is one call of the SQL function
 * `document_compare_and_set`, which locks the document's row (`FOR UPDATE`,
 * or creates it with `INSERT … ON CONFLICT`) and checks the mutation, checks
 * the version, writes, trims and records the mutation in that one statement,
 * so two writers on any nodes that expect the same version never both commit
 * and a mutation never commits twice. An application's own transaction can
 * call the same function to change a document alongside its other rows.
 *
 * A version's size is the UTF-8 length of its `data` as JSON, as the memory
 * and Redis stores count it. Mutation records are timed by this node's clock
 * (`now`), as `updatedAt` is, and kept and forgotten per writer exactly as
 * `DocumentStore.compareAndSet` describes. Data is stored as `json`, so it
 * reads back as it was written; what callers pass in or get back is a copy.
 *
 * Every call rejects within `timeoutMs` (default 5 s) when PostgreSQL cannot
 * be reached, and works again, without a restart, once it can.
 *
 * @param options.maxHistory Versions kept per document; default 100.
 * @param options.maxHistoryBytes Bytes of versions kept per document; default 4 MiB.
 * @param options.maxMutations Mutation ids remembered per writer of a document; default 1,000.
 * @param options.maxMutationWriters Writers whose mutation ids a document keeps; default 100.
 * @param options.mutationTtlMs How long a mutation id is remembered; default 7 days.
 * @throws RangeError when an option is not a positive integer.
 * @throws TypeError when `pool` is not a pg Pool or `schema` not an SQL identifier; from `compareAndSet` when the data is not a JSON object or the mutation id is empty (nothing is written).
 * @throws TrussError `INVALID_PAYLOAD` from any call whose ids (or `updatedBy`, mutation id, writer) contain U+0000, which PostgreSQL text cannot hold, or that PostgreSQL refuses for good (an id too long to index).
 */
export function postgresDocumentStore(options: PostgresDocumentStoreOptions): DocumentStore {
  const { maxHistory, maxHistoryBytes, maxMutations, maxMutationWriters, maxMutationHorizons, mutationTtlMs } = resolveDocumentStoreOptions(
    "postgresDocumentStore",
    options,
  );
  const sql = new Statements("postgresDocumentStore", options);
  const now = options.now ?? Date.now;
  const s = sql.schema;
  const versionOf = (key: DocumentKey, row: VersionRow): DocumentVersion => ({
    type: key.type,
    id: key.id,
    version: toNumber(row.version),
    data: JSON.parse(row.data) as DocumentVersion["data"],
    updatedAt: toNumber(row.updated_at),
    updatedBy: row.updated_by,
  });

  const checkKey = (key: DocumentKey) => refuseNul("postgresDocumentStore", { companyId: key.companyId, type: key.type, id: key.id });
  const get = async (key: DocumentKey): Promise<DocumentVersion | null> => {
    checkKey(key);
    const [row] = await sql.rows<VersionRow>(
      `SELECT version, data::text AS data, updated_at, updated_by FROM ${s}.documents WHERE company_id = $1 AND type = $2 AND id = $3`,
      [key.companyId, key.type, key.id],
    );
    return row ? versionOf(key, row) : null;
  };

  return {
    get,

    async getVersion(key, version) {
      checkKey(key);
      if (!Number.isSafeInteger(version) || version < 1) return null;
      const [row] = await sql.rows<VersionRow>(
        `SELECT v.version, v.data::text AS data, v.updated_at, v.updated_by
         FROM ${s}.documents d JOIN ${s}.document_versions v ON v.doc = d.doc
         WHERE d.company_id = $1 AND d.type = $2 AND d.id = $3 AND v.version = $4`,
        [key.companyId, key.type, key.id, version],
      );
      return row ? versionOf(key, row) : null;
    },

    async mutation(key, mutation) {
      checkKey(key);
      refuseNul("postgresDocumentStore", { "mutation id": mutation.id, writer: mutation.writer });
      const row = await sql.row<{ version: string | null; forgotten: string | null; horizon: string | null }>(
        `SELECT m.version, d.forgotten, h.horizon
         FROM (SELECT 1) one
         LEFT JOIN ${s}.documents d ON d.company_id = $1 AND d.type = $2 AND d.id = $3
         LEFT JOIN ${s}.document_mutations m ON m.doc = d.doc AND m.mutation_id = $4
         LEFT JOIN ${s}.document_mutation_horizons h ON h.doc = d.doc AND h.writer = $5`,
        [key.companyId, key.type, key.id, mutation.id, mutation.writer],
      );
      if (row.version !== null) return { state: "committed", version: toNumber(row.version) };
      const forgottenBefore = Math.max(toNumber(row.forgotten), toNumber(row.horizon));
      return mutationMayBeForgotten(mutation.madeAt, forgottenBefore, now(), mutationTtlMs) ? { state: "expired" } : { state: "new" };
    },

    async compareAndSet(key, expectedVersion, data, updatedBy, mutation): Promise<CompareAndSetResult> {
      const dataJson = JSON.stringify(data) as string | undefined;
      if (typeof dataJson !== "string" || dataJson[0] !== "{") {
        throw new TypeError("postgresDocumentStore: document data must be a JSON object");
      }
      if (mutation && mutation.id === "") throw new TypeError("postgresDocumentStore: a mutation id must not be empty");
      checkKey(key);
      refuseNul("postgresDocumentStore", { updatedBy, "mutation id": mutation?.id, writer: mutation?.writer });
      // No version is ever anything else, so such an expectation fails as any stale one does.
      if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) return { ok: false, current: await get(key) };
      const at = now();
      const row = await sql.row<CompareAndSetRow>(
        `SELECT * FROM ${s}.document_compare_and_set($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
        [
          key.companyId,
          key.type,
          key.id,
          expectedVersion,
          dataJson,
          Buffer.byteLength(dataJson),
          updatedBy,
          mutation?.id ?? null,
          mutation?.writer ?? "",
          mutation?.madeAt ?? 0,
          at,
          at - mutationTtlMs,
          maxHistory,
          maxHistoryBytes,
          maxMutations,
          maxMutationWriters,
          maxMutationHorizons,
        ],
        { lockTimeout: true },
      );
      if (row.outcome === 1) {
        return {
          ok: true,
          document: { type: key.type, id: key.id, version: expectedVersion + 1, data: JSON.parse(dataJson) as DocumentVersion["data"], updatedAt: at, updatedBy },
        };
      }
      const current =
        row.current_version === null
          ? null
          : versionOf(key, { version: row.current_version, data: row.current_data ?? "{}", updated_at: row.current_updated_at ?? "0", updated_by: row.current_updated_by });
      if (row.outcome === 2) return { ok: false, current, mutation: { state: "committed", version: toNumber(row.committed_version) } };
      if (row.outcome === 3) return { ok: false, current, mutation: { state: "expired" } };
      return { ok: false, current };
    },

    async history(key, limit) {
      checkKey(key);
      if (!(limit > 0)) return [];
      const rows = await sql.rows<VersionRow>(
        `SELECT v.version, v.data::text AS data, v.updated_at, v.updated_by
         FROM ${s}.documents d JOIN ${s}.document_versions v ON v.doc = d.doc
         WHERE d.company_id = $1 AND d.type = $2 AND d.id = $3
         ORDER BY v.version DESC LIMIT $4`,
        [key.companyId, key.type, key.id, Math.min(Math.floor(limit), 2 ** 31 - 1)],
      );
      return rows.map((row) => versionOf(key, row));
    },

    async ping() {
      await sql.rows("SELECT 1");
    },
  };
}
