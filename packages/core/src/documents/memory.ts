import {
  mutationMayBeForgotten,
  resolveDocumentStoreOptions,
  type DocumentKey,
  type DocumentStore,
  type DocumentStoreOptions,
  type DocumentVersion,
  type MutationRef,
  type MutationState,
} from "./store.js";
import { refuseNonJsonFields } from "../json-fields.js";

/** One committed version as stored: its data kept as JSON, which is both the copy and the size. */
interface StoredVersion {
  meta: Omit<DocumentVersion, "data">;
  json: string;
  /** UTF-8 size of `json`. */
  bytes: number;
}

/** One document: its kept versions and the mutations recently committed to it. */
interface StoredDocument {
  /** Oldest first, latest last. */
  versions: StoredVersion[];
  /** Total size of `versions`. */
  bytes: number;
  /** Mutation id → the version it committed and when; in the order recorded, so the oldest come first. */
  mutations: Map<string, { version: number; recordedAt: number }>;
  /** The newest record time the `maxMutations` cap pushed out; 0 when none was. */
  forgottenBefore: number;
}

/**
 * The in-memory document store, the engine's default for a single node.
 *
 * Documents are nested by company, then type, then id (never joined into one
 * string key, so no choice of ids can make two documents collide). Data is
 * kept as JSON text: a caller mutating an object it passed or received can
 * never change what is stored, what comes back is what a Redis store would
 * return, and the history's byte cap is measured on what is actually held.
 *
 * @param options.maxHistory Versions kept per document; default {@link DEFAULT_DOCUMENT_HISTORY}.
 * @param options.maxHistoryBytes Bytes of versions kept per document; default {@link DEFAULT_DOCUMENT_HISTORY_BYTES}.
 * @param options.maxMutations Mutation ids remembered per document; default {@link DEFAULT_MAX_MUTATIONS}.
 * @param options.mutationTtlMs How long a mutation id is remembered; default {@link DEFAULT_MUTATION_TTL_MS}.
 * @param options.now Clock in epoch ms, for tests; defaults to `Date.now`.
 * @throws RangeError when an option is not a positive integer.
 */
export function memoryDocumentStore(options: DocumentStoreOptions & { now?: () => number } = {}): DocumentStore {
  const now = options.now ?? Date.now;
  const { maxHistory, maxHistoryBytes, maxMutations, mutationTtlMs } = resolveDocumentStoreOptions("memoryDocumentStore", options);

  /** companyId → type → id → the document. */
  const companies = new Map<string, Map<string, Map<string, StoredDocument>>>();

  const historyOf = (key: DocumentKey) => companies.get(key.companyId)?.get(key.type)?.get(key.id);

  const historyForWrite = (key: DocumentKey) => {
    let types = companies.get(key.companyId);
    if (!types) companies.set(key.companyId, (types = new Map()));
    let ids = types.get(key.type);
    if (!ids) types.set(key.type, (ids = new Map()));
    let history = ids.get(key.id);
    if (!history) ids.set(key.id, (history = { versions: [], bytes: 0, mutations: new Map(), forgottenBefore: 0 }));
    return history;
  };

  const stateOf = (document: StoredDocument | undefined, mutation: MutationRef, at: number): MutationState => {
    const recorded = document?.mutations.get(mutation.id);
    if (recorded) return { state: "committed", version: recorded.version };
    return mutationMayBeForgotten(mutation.madeAt, document?.forgottenBefore ?? 0, at, mutationTtlMs) ? { state: "expired" } : { state: "new" };
  };

  /** Records a committed mutation, then forgets those past the TTL and the cap, oldest first. */
  const record = (document: StoredDocument, mutation: MutationRef, version: number, at: number) => {
    const { mutations } = document;
    mutations.set(mutation.id, { version, recordedAt: at });
    for (const [id, { recordedAt }] of mutations) {
      const expired = recordedAt < at - mutationTtlMs;
      if (!expired && mutations.size <= maxMutations) break;
      mutations.delete(id);
      if (!expired) document.forgottenBefore = Math.max(document.forgottenBefore, recordedAt);
    }
  };

  return {
    async get(key) {
      const latest = historyOf(key)?.versions.at(-1);
      return latest ? decode(latest) : null;
    },

    async getVersion(key, version) {
      const versions = historyOf(key)?.versions;
      const oldest = versions?.[0];
      if (!versions || !oldest) return null;
      const found = versions[version - oldest.meta.version];
      return found && found.meta.version === version ? decode(found) : null;
    },

    async mutation(key, mutation) {
      return stateOf(historyOf(key), mutation, now());
    },

    async compareAndSet(key, expectedVersion, data, updatedBy, mutation) {
      // Encoded before the check: data that JSON cannot carry rejects with nothing written.
      refuseNonJsonFields(data, "memoryDocumentStore");
      const json = JSON.stringify(data);
      if (typeof json !== "string" || json[0] !== "{") throw new TypeError("memoryDocumentStore: document data must be a JSON object");
      // No await from here on: the check and the write happen in one turn of
      // the event loop, which is what makes this compare-and-set atomic.
      const at = now();
      const stored = historyOf(key);
      const latest = stored?.versions.at(-1) ?? null;
      const state = mutation ? stateOf(stored, mutation, at) : null;
      if (state && state.state !== "new") return { ok: false, current: latest ? decode(latest) : null, mutation: state };
      if ((latest?.meta.version ?? 0) !== expectedVersion) {
        return { ok: false, current: latest ? decode(latest) : null };
      }
      const committed: StoredVersion = {
        meta: { type: key.type, id: key.id, version: expectedVersion + 1, updatedAt: at, updatedBy },
        json,
        bytes: Buffer.byteLength(json),
      };
      const history = historyForWrite(key);
      history.versions.push(committed);
      history.bytes += committed.bytes;
      let drop = Math.max(0, history.versions.length - maxHistory);
      let bytes = history.bytes;
      for (let index = 0; index < drop; index++) bytes -= history.versions[index]!.bytes;
      while (bytes > maxHistoryBytes && drop < history.versions.length - 1) bytes -= history.versions[drop++]!.bytes;
      if (drop > 0) {
        history.versions.splice(0, drop);
        history.bytes = bytes;
      }
      if (mutation) record(history, mutation, committed.meta.version, at);
      return { ok: true, document: decode(committed) };
    },

    async history(key, limit) {
      const versions = historyOf(key)?.versions;
      if (!versions || limit <= 0) return [];
      return versions.slice(-limit).reverse().map(decode);
    },
  };
}

function decode(stored: StoredVersion): DocumentVersion {
  return { ...stored.meta, data: JSON.parse(stored.json) as DocumentVersion["data"] };
}
