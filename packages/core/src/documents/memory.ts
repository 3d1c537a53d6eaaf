import {
  DEFAULT_DOCUMENT_HISTORY,
  DEFAULT_DOCUMENT_HISTORY_BYTES,
  type DocumentKey,
  type DocumentStore,
  type DocumentStoreOptions,
  type DocumentVersion,
} from "./store.js";
import { refuseNonJsonFields } from "../json-fields.js";

/** One committed version as stored: its data kept as JSON, which is both the copy and the size. */
interface StoredVersion {
  meta: Omit<DocumentVersion, "data">;
  json: string;
  /** UTF-8 size of `json`. */
  bytes: number;
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
 * @param options.now Clock in epoch ms, for tests; defaults to `Date.now`.
 * @throws RangeError when `maxHistory` or `maxHistoryBytes` is not a positive integer.
 */
export function memoryDocumentStore(options: DocumentStoreOptions & { now?: () => number } = {}): DocumentStore {
  const now = options.now ?? Date.now;
  const maxHistory = options.maxHistory ?? DEFAULT_DOCUMENT_HISTORY;
  const maxHistoryBytes = options.maxHistoryBytes ?? DEFAULT_DOCUMENT_HISTORY_BYTES;
  if (!(Number.isInteger(maxHistory) && maxHistory > 0)) {
    throw new RangeError(`memoryDocumentStore: maxHistory must be a positive integer, got ${maxHistory}`);
  }
  if (!(Number.isInteger(maxHistoryBytes) && maxHistoryBytes > 0)) {
    throw new RangeError(`memoryDocumentStore: maxHistoryBytes must be a positive integer, got ${maxHistoryBytes}`);
  }

  /** companyId → type → id → committed versions, oldest first, latest last, with their total size. */
  const companies = new Map<string, Map<string, Map<string, { versions: StoredVersion[]; bytes: number }>>>();

  const historyOf = (key: DocumentKey) => companies.get(key.companyId)?.get(key.type)?.get(key.id);

  const historyForWrite = (key: DocumentKey) => {
    let types = companies.get(key.companyId);
    if (!types) companies.set(key.companyId, (types = new Map()));
    let ids = types.get(key.type);
    if (!ids) types.set(key.type, (ids = new Map()));
    let history = ids.get(key.id);
    if (!history) ids.set(key.id, (history = { versions: [], bytes: 0 }));
    return history;
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

    async compareAndSet(key, expectedVersion, data, updatedBy) {
      // Encoded before the check: data that JSON cannot carry rejects with nothing written.
      refuseNonJsonFields(data, "memoryDocumentStore");
      const json = JSON.stringify(data);
      if (typeof json !== "string" || json[0] !== "{") throw new TypeError("memoryDocumentStore: document data must be a JSON object");
      // No await from here on: the check and the write happen in one turn of
      // the event loop, which is what makes this compare-and-set atomic.
      const latest = historyOf(key)?.versions.at(-1) ?? null;
      if ((latest?.meta.version ?? 0) !== expectedVersion) {
        return { ok: false, current: latest ? decode(latest) : null };
      }
      const committed: StoredVersion = {
        meta: { type: key.type, id: key.id, version: expectedVersion + 1, updatedAt: now(), updatedBy },
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
