import { removeOldest } from "../kernel/bounded-logs.js";
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
import { MutationWindow, soleRecordBytes, type MutationRecord } from "./mutation-window.js";
import { ENGINE_READS, type EngineReads } from "./engine-reads.js";
import { TrussError } from "../kernel/errors.js";
import { refuseNonJsonFields } from "../kernel/json-fields.js";
import { snapshotJson } from "../kernel/payload.js";
import { checkPositiveIntegers, DEFAULT_MEMORY_BYTES_PER_COMPANY } from "../kernel/store-options.js";
import { markInProcess } from "../kernel/in-process.js";

/** Options of {@link memoryDocumentStore}. */
export interface MemoryDocumentStoreOptions extends DocumentStoreOptions {
  /**
   * How many documents one company may hold. A write that would create one
   * more is refused with `QUOTA_EXCEEDED`; nothing is stored.
   *
   * @default 10000
   */
  maxDocumentsPerCompany?: number;
  /**
   * How many bytes of versions (their data as JSON, latest versions and
   * history together) and mutation records one company may hold. A record
   * counts its mutation id's length plus 384 bytes (a writer's entry and a
   * forgotten writer's horizon count a fixed overhead too), near what holding it costs
   * the process. Past it the company's oldest history goes first, across its
   * documents (the latest version of each is never dropped), then its oldest
   * mutation records, before `mutationTtlMs` would forget them: a resend of
   * one is `expired`, never committed again. Only a write whose latest
   * versions, with its own mutation's record, would pass it is refused with
   * `QUOTA_EXCEEDED`, and nothing is stored.
   *
   * @default 67108864 (64 MiB)
   */
  maxBytesPerCompany?: number;
  /** Clock in epoch ms, for tests. Default `Date.now`. */
  now?: () => number;
}

/** Default documents one company may hold in the memory store. */
const DEFAULT_MAX_DOCUMENTS_PER_COMPANY = 10_000;

/**
 * How many bytes (of JSON) of recent versions the store keeps decoded for the
 * engine's reads ({@link ENGINE_READS}), across all companies: enough for the
 * latest versions of the documents being written, and the few versions
 * before them that stale writes are based on, without doubling what a full
 * store holds.
 */
const ENGINE_DECODED_BYTES = 4 * 1024 * 1024;
/** How many versions the store keeps decoded at most, however small: each decoded object weighs more than its JSON. */
const ENGINE_DECODED_VERSIONS = 10_000;

/** One committed version as stored: its data kept as JSON, which is both the copy and the size. */
interface StoredVersion {
  meta: Omit<DocumentVersion, "data">;
  json: string;
  /** UTF-8 size of `json`. */
  bytes: number;
  /**
   * The version decoded for the engine's reads, while it is among the
   * recently decoded: the engine's own object by {@link ENGINE_READS}'s
   * contract, never handed out by the public methods, which decode `json`.
   */
  decoded?: DocumentVersion;
}

/** Runs a change of a document's mutation records, moves the company's counts by what it changed, and returns its result. */
function counted<T>(company: StoredCompany, window: MutationWindow, change: () => T): T {
  const { bytes, size } = window;
  const result = change();
  company.mutationBytes += window.bytes - bytes;
  company.mutationRecords += window.size - size;
  return result;
}

/** One document: its kept versions and the mutations recently committed to it. */
interface StoredDocument {
  /** Oldest first, latest last. */
  versions: StoredVersion[];
  /** Total size of `versions`. */
  bytes: number;
  mutations: MutationWindow;
}

/** A version that is no longer the latest, in the order versions left the latest place. */
interface HistoryEntry {
  document: StoredDocument;
  version: number;
}

/** One company's documents and what they hold, for its quotas. */
interface StoredCompany {
  /** type → id → the document. */
  types: Map<string, Map<string, StoredDocument>>;
  documents: number;
  /** Bytes of every kept version. */
  bytes: number;
  /** Bytes of the latest versions alone: what shedding history and mutation records cannot free. */
  latestBytes: number;
  /** What its documents' mutation records count ({@link MutationWindow.bytes}), kept until they expire or are pushed out. */
  mutationBytes: number;
  /** How many mutation records its documents hold. */
  mutationRecords: number;
  /**
   * Every mutation record its documents made, oldest first, from
   * `mutationsStart` on: what goes after history past `maxBytesPerCompany`.
   * Records a document already forgot (by its caps or the TTL) are skipped,
   * and swept out once they pass a quarter of the held ones.
   */
  mutations: MutationRecord[];
  mutationsStart: number;
  /**
   * Every version that became history, oldest first, from `historyStart` on:
   * what goes first past `maxBytesPerCompany`. Entries whose version a
   * document's own caps already dropped are skipped, and swept out once
   * they outnumber the live ones.
   */
  history: HistoryEntry[];
  historyStart: number;
  /** How many versions of the company are history and still kept. */
  historyCount: number;
}

/**
 * The in-memory document store, the engine's default for a single node.
 *
 * Documents are nested by company, then type, then id (never joined into one
 * string key, so no choice of ids can make two documents collide). Data is
 * kept as JSON text: a caller mutating an object it passed or received can
 * never change what is stored, what comes back is what a Redis store would
 * return, and the history's byte cap is measured on what is actually held.
 * Only the engine's own update path also reads recent versions decoded once
 * and kept (up to 4 MiB of JSON, 10,000 versions, across the store), which it never changes
 * and only hands out as copies; every method here decodes afresh.
 *
 * Each company may hold at most `maxDocumentsPerCompany` documents and
 * `maxBytesPerCompany` bytes of versions, so one tenant (or one user) cannot
 * exhaust the process's memory: past the bytes, the company's oldest history
 * is dropped first, and a write that still does not fit is refused with a
 * `TrussError` `QUOTA_EXCEEDED`. Mutation records are bounded per document
 * (`maxMutations` × `maxMutationWriters`) and counted in the company's bytes
 * until they expire or are pushed out; past the bytes, once history is gone,
 * the company's oldest records are forgotten early, so its own writes never
 * lock it out, and a resend of one is answered `expired`, not committed again.
 *
 * @param options.maxHistory Versions kept per document; default 100 (`DEFAULTS.documents.maxHistory`).
 * @param options.maxHistoryBytes Bytes of versions kept per document; default 4 MiB (`DEFAULTS.documents.maxHistoryBytes`).
 * @param options.maxMutations Mutation ids remembered per writer of a document; default 1,000 (`DEFAULTS.documents.maxMutations`).
 * @param options.maxMutationWriters Writers whose mutation ids a document keeps; default 100.
 * @param options.mutationTtlMs How long a mutation id is remembered; default 7 days (`DEFAULTS.documents.mutationTtlMs`).
 * @param options.maxDocumentsPerCompany Documents one company may hold; default 10,000.
 * @param options.maxBytesPerCompany Bytes of versions and mutation records one company may hold; default 64 MiB.
 * @param options.now Clock in epoch ms, for tests; defaults to `Date.now`.
 * @throws RangeError when an option is not a positive integer.
 */
export function memoryDocumentStore(options: MemoryDocumentStoreOptions = {}): DocumentStore {
  const now = options.now ?? Date.now;
  const resolved = resolveDocumentStoreOptions("memoryDocumentStore", options);
  const { maxHistory, maxHistoryBytes } = resolved;
  const { maxDocumentsPerCompany, maxBytesPerCompany } = checkPositiveIntegers("memoryDocumentStore", {
    maxDocumentsPerCompany: options.maxDocumentsPerCompany ?? DEFAULT_MAX_DOCUMENTS_PER_COMPANY,
    maxBytesPerCompany: options.maxBytesPerCompany ?? DEFAULT_MEMORY_BYTES_PER_COMPANY,
  });

  const companies = new Map<string, StoredCompany>();

  /** The versions holding `decoded`, oldest first from `decodedStart`, and the bytes of their JSON. */
  let decodedVersions: StoredVersion[] = [];
  let decodedStart = 0;
  let decodedBytes = 0;

  /** Keeps `decoded` on `stored`, and lets the oldest decoded versions go past {@link ENGINE_DECODED_BYTES}. */
  const keepDecoded = (stored: StoredVersion, decoded: DocumentVersion): DocumentVersion => {
    stored.decoded = decoded;
    decodedVersions.push(stored);
    decodedBytes += stored.bytes;
    while ((decodedBytes > ENGINE_DECODED_BYTES || decodedVersions.length - decodedStart > ENGINE_DECODED_VERSIONS) && decodedStart < decodedVersions.length - 1) {
      const oldest = decodedVersions[decodedStart++]!;
      oldest.decoded = undefined;
      decodedBytes -= oldest.bytes;
    }
    if (decodedStart > 1024 && decodedStart * 2 > decodedVersions.length) {
      decodedVersions = decodedVersions.slice(decodedStart);
      decodedStart = 0;
    }
    return decoded;
  };

  /** The version for the engine's reads: decoded once while it is recent, then shared. */
  const engineVersion = (stored: StoredVersion): DocumentVersion => stored.decoded ?? keepDecoded(stored, decode(stored));

  const engineReads: EngineReads = {
    async get(key) {
      const latest = documentOf(key)?.versions.at(-1);
      return latest ? engineVersion(latest) : null;
    },
    async getVersion(key, version) {
      const found = storedVersion(key, version);
      return found ? engineVersion(found) : null;
    },
  };

  const storedVersion = (key: DocumentKey, version: number): StoredVersion | null => {
    const versions = documentOf(key)?.versions;
    const oldest = versions?.[0];
    if (!versions || !oldest) return null;
    const found = versions[version - oldest.meta.version];
    return found && found.meta.version === version ? found : null;
  };

  const documentOf = (key: DocumentKey) => companies.get(key.companyId)?.types.get(key.type)?.get(key.id);

  const companyFor = (companyId: string): StoredCompany => {
    let company = companies.get(companyId);
    if (!company) {
      company = {
        types: new Map(),
        documents: 0,
        bytes: 0,
        latestBytes: 0,
        mutationBytes: 0,
        mutationRecords: 0,
        mutations: [],
        mutationsStart: 0,
        history: [],
        historyStart: 0,
        historyCount: 0,
      };
      companies.set(companyId, company);
    }
    return company;
  };

  const documentFor = (company: StoredCompany, key: DocumentKey): StoredDocument => {
    let ids = company.types.get(key.type);
    if (!ids) company.types.set(key.type, (ids = new Map()));
    let document = ids.get(key.id);
    if (!document) {
      ids.set(key.id, (document = { versions: [], bytes: 0, mutations: new MutationWindow(resolved) }));
      company.documents += 1;
    }
    return document;
  };

  const stateOf = (document: StoredDocument | undefined, mutation: MutationRef, at: number): MutationState => {
    const recorded = document?.mutations.recorded(mutation);
    if (recorded !== undefined) return { state: "committed", version: recorded };
    const forgottenBefore = document?.mutations.horizonOf(mutation.writer) ?? 0;
    return mutationMayBeForgotten(mutation.madeAt, forgottenBefore, at, resolved.mutationTtlMs) ? { state: "expired" } : { state: "new" };
  };

  /**
   * Refuses a write that would take the company past its quotas, even with all its history and every other
   * mutation record forgotten; changes nothing. `bytes` counts the new version and what its mutation's record needs.
   */
  const assertWithinQuota = (key: DocumentKey, company: StoredCompany | undefined, latest: StoredVersion | null, bytes: number) => {
    if (!latest && (company?.documents ?? 0) >= maxDocumentsPerCompany) {
      throw new TrussError(
        "QUOTA_EXCEEDED",
        `${key.type}/${key.id} was not created: the company already holds ${maxDocumentsPerCompany} documents, as many as this server keeps for one company.`,
      );
    }
    const held = (company?.latestBytes ?? 0) - (latest?.bytes ?? 0) + bytes;
    if (held > maxBytesPerCompany) {
      throw new TrussError(
        "QUOTA_EXCEEDED",
        `${key.type}/${key.id} was not saved: with it, the latest versions of the company's documents would hold ${held} bytes, past the ${maxBytesPerCompany} this server keeps for one company.`,
      );
    }
  };

  /** Whether the company's versions and mutation records pass its bytes. */
  const overQuota = (company: StoredCompany) => company.bytes + company.mutationBytes > maxBytesPerCompany;

  /** Drops the document's oldest versions past its own caps (the latest is always kept). */
  const trimDocument = (company: StoredCompany, document: StoredDocument) => {
    const { versions } = document;
    let drop = Math.max(0, versions.length - maxHistory);
    let bytes = document.bytes;
    for (let index = 0; index < drop; index++) bytes -= versions[index]!.bytes;
    while (bytes > maxHistoryBytes && drop < versions.length - 1) bytes -= versions[drop++]!.bytes;
    if (drop === 0) return;
    removeOldest(versions, drop);
    company.bytes -= document.bytes - bytes;
    company.historyCount -= drop;
    document.bytes = bytes;
  };

  /** Drops the company's oldest history until it is within its bytes (records included), and sweeps entries its documents dropped themselves. */
  const shedHistory = (company: StoredCompany) => {
    const { history } = company;
    while (overQuota(company) && company.historyStart < history.length) {
      const { document, version } = history[company.historyStart++]!;
      const oldest = document.versions[0]!;
      // Versions leave history oldest first, so a live entry is always its document's oldest version.
      if (oldest.meta.version !== version) continue;
      document.versions.shift();
      document.bytes -= oldest.bytes;
      company.bytes -= oldest.bytes;
      company.historyCount -= 1;
    }
    if (history.length - company.historyStart > 2 * company.historyCount + 64) {
      company.history = history.slice(company.historyStart).filter(({ document, version }) => version >= document.versions[0]!.meta.version);
      company.historyStart = 0;
    }
  };

  /**
   * Forgets the company's oldest mutation records until it is within its bytes, never `made` (the record of the
   * write being committed, which the quota check left room for), then if need be every horizon they left; and
   * sweeps out records its documents forgot themselves. Runs after {@link shedHistory}: history goes first.
   */
  const shedMutations = (company: StoredCompany, made: MutationRecord | undefined, at: number) => {
    const { mutations } = company;
    while (overQuota(company) && company.mutationsStart < mutations.length && mutations[company.mutationsStart] !== made) {
      const oldest = mutations[company.mutationsStart++]!;
      counted(company, oldest.window, () => oldest.window.forgetEarly(oldest, at));
    }
    if (overQuota(company)) {
      for (const ids of company.types.values()) {
        for (const { mutations: window } of ids.values()) counted(company, window, () => window.forgetHorizons());
      }
    }
    // A record its document forgot stays here, with its id, until swept: at most a quarter as many as are held,
    // which the quota's count of a record (MUTATION_RECORD_OVERHEAD_BYTES) covers.
    if (mutations.length - company.mutationsStart - company.mutationRecords > company.mutationRecords / 4 + 64) {
      company.mutations = mutations.slice(company.mutationsStart).filter((record) => record.window.holds(record));
      company.mutationsStart = 0;
    }
  };

  const store: DocumentStore & { [ENGINE_READS]: EngineReads } = {
    async get(key) {
      const latest = documentOf(key)?.versions.at(-1);
      return latest ? decode(latest) : null;
    },

    async getVersion(key, version) {
      const found = storedVersion(key, version);
      return found ? decode(found) : null;
    },

    async mutation(key, mutation) {
      return stateOf(documentOf(key), mutation, now());
    },

    async compareAndSet(key, expectedVersion, data, updatedBy, mutation) {
      // The engine hands over data it already encoded; anything else is encoded before the check,
      // so data that JSON cannot carry rejects with nothing written.
      const known = snapshotJson(data);
      if (known === undefined) refuseNonJsonFields(data, "memoryDocumentStore");
      const json = known ?? JSON.stringify(data);
      if (typeof json !== "string" || json[0] !== "{") throw new TypeError("memoryDocumentStore: document data must be a JSON object");
      // No await from here on: the check and the write happen in one turn of
      // the event loop, which is what makes this compare-and-set atomic.
      const at = now();
      const stored = documentOf(key);
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
        decoded: undefined,
      };
      assertWithinQuota(key, companies.get(key.companyId), latest, committed.bytes + (mutation ? soleRecordBytes(mutation) : 0));
      const company = companyFor(key.companyId);
      const document = documentFor(company, key);
      if (latest) {
        company.history.push({ document, version: latest.meta.version });
        company.historyCount += 1;
      }
      document.versions.push(committed);
      document.bytes += committed.bytes;
      company.bytes += committed.bytes;
      company.latestBytes += committed.bytes - (latest?.bytes ?? 0);
      const window = document.mutations;
      const made = mutation && counted(company, window, () => window.record(mutation, committed.meta.version, at));
      if (made) company.mutations.push(made);
      trimDocument(company, document);
      shedHistory(company);
      shedMutations(company, made, at);
      // Data the engine encoded is its own copy: it goes back as it is, with no decode, and is what the engine's
      // reads of this version share (ENGINE_READS), so the next update reads it without decoding it either.
      return { ok: true, document: known === undefined ? decode(committed) : keepDecoded(committed, withData(committed.meta, data as DocumentVersion["data"])) };
    },

    async history(key, limit) {
      const versions = documentOf(key)?.versions;
      if (!versions || limit <= 0) return [];
      return versions.slice(-limit).reverse().map(decode);
    },

    [ENGINE_READS]: engineReads,
  };
  return markInProcess(store);
}

function decode(stored: StoredVersion): DocumentVersion {
  return withData(stored.meta, JSON.parse(stored.json) as DocumentVersion["data"]);
}

/** The version with its data; built field by field (in the order of `meta`, then `data`), which costs far less than a spread on every commit. */
function withData(meta: StoredVersion["meta"], data: DocumentVersion["data"]): DocumentVersion {
  return { type: meta.type, id: meta.id, version: meta.version, updatedAt: meta.updatedAt, updatedBy: meta.updatedBy, data };
}
