import {
  DEFAULT_DOCUMENT_HISTORY,
  type DocumentKey,
  type DocumentStore,
  type DocumentStoreOptions,
  type DocumentVersion,
} from "./store.js";

/**
 * The in-memory document store, the engine's default for a single node.
 *
 * Documents are nested by company, then type, then id (never joined into one
 * string key, so no choice of ids can make two documents collide), and data
 * is deep-copied on the way in and out, so a caller mutating an object it
 * passed or received can never change what is stored.
 *
 * @param options.maxHistory Versions kept per document; default {@link DEFAULT_DOCUMENT_HISTORY}.
 * @param options.now Clock in epoch ms, for tests; defaults to `Date.now`.
 * @throws RangeError when `maxHistory` is not a positive integer.
 */
export function memoryDocumentStore(
  options: DocumentStoreOptions & { now?: () => number } = {},
): DocumentStore {
  const now = options.now ?? Date.now;
  const maxHistory = options.maxHistory ?? DEFAULT_DOCUMENT_HISTORY;
  if (!(Number.isInteger(maxHistory) && maxHistory > 0)) {
    throw new RangeError(`memoryDocumentStore: maxHistory must be a positive integer, got ${maxHistory}`);
  }

  /** companyId → type → id → committed versions, oldest first, latest last. */
  const companies = new Map<string, Map<string, Map<string, DocumentVersion[]>>>();

  const versionsOf = (key: DocumentKey) => companies.get(key.companyId)?.get(key.type)?.get(key.id);

  const versionsForWrite = (key: DocumentKey): DocumentVersion[] => {
    let types = companies.get(key.companyId);
    if (!types) {
      types = new Map();
      companies.set(key.companyId, types);
    }
    let ids = types.get(key.type);
    if (!ids) {
      ids = new Map();
      types.set(key.type, ids);
    }
    let versions = ids.get(key.id);
    if (!versions) {
      versions = [];
      ids.set(key.id, versions);
    }
    return versions;
  };

  return {
    async get(key) {
      const latest = versionsOf(key)?.at(-1);
      return latest ? copyOf(latest) : null;
    },

    async getVersion(key, version) {
      const versions = versionsOf(key);
      const oldest = versions?.[0];
      if (!versions || !oldest) return null;
      const found = versions[version - oldest.version];
      return found && found.version === version ? copyOf(found) : null;
    },

    async compareAndSet(key, expectedVersion, data, updatedBy) {
      // Cloned before the check so that unserialisable data rejects with nothing written.
      const stored = structuredClone(data);
      // No await from here on: the check and the write happen in one turn of
      // the event loop, which is what makes this compare-and-set atomic.
      const latest = versionsOf(key)?.at(-1) ?? null;
      if ((latest?.version ?? 0) !== expectedVersion) {
        return { ok: false, current: latest ? copyOf(latest) : null };
      }
      const committed: DocumentVersion = {
        type: key.type,
        id: key.id,
        version: expectedVersion + 1,
        data: stored,
        updatedAt: now(),
        updatedBy,
      };
      const versions = versionsForWrite(key);
      versions.push(committed);
      if (versions.length > maxHistory) versions.splice(0, versions.length - maxHistory);
      return { ok: true, document: copyOf(committed) };
    },

    async history(key, limit) {
      const versions = versionsOf(key);
      if (!versions || limit <= 0) return [];
      return versions.slice(-limit).reverse().map(copyOf);
    },
  };
}

function copyOf(version: DocumentVersion): DocumentVersion {
  return { ...version, data: structuredClone(version.data) };
}
