import {
  MAX_MUTATION_ID_LENGTH,
  PROTOCOL_EVENTS,
  type DocumentData,
  type DocumentDeltaUpdated,
  type DocumentDropped,
  type DocumentUpdated,
  type DocumentUpdatedPayload,
  type DocumentVersion,
  type FieldConflict,
} from "@truss/protocol";
import type { Connection } from "./connection.js";
import { fromPayload, isRetryableCode, type TrussClientError } from "./errors.js";
import { Listeners } from "./listeners.js";
import { newMutationId, type Outbox } from "./outbox.js";
import type { PendingDocumentWrite, PendingWrite } from "./outbox-stores.js";
import { KeptSubscriptions, type DroppedSubscription } from "./subscriptions.js";

/** What an {@link ConflictHandler} is shown. */
export interface DocumentConflict {
  /** The document's kind. */
  type: string;
  /** The document's id. */
  id: string;
  /** The latest committed version, which the update was not based on. */
  current: DocumentVersion;
  /** Each field both sides changed differently, with its base, current and incoming value. */
  conflicts: FieldConflict[];
  /** The changes that were refused. */
  changes: DocumentData;
}

/**
 * How to settle a conflict:
 * - `"mine"`: send the same changes again, based on the current version (they win);
 * - `"theirs"`: keep the current version and drop the changes;
 * - an object: send these changes instead, based on the current version (a manual merge).
 */
export type ConflictResolution = "mine" | "theirs" | DocumentData;

/** Decides a conflict, e.g. by asking the user; may be async. */
export type ConflictHandler = (conflict: DocumentConflict) => ConflictResolution | Promise<ConflictResolution>;

/**
 * The outcome of {@link DocumentsClient.update}. `status` says what the
 * server did with the last attempt; `resolution` is set when `onConflict`
 * settled a conflict on the way.
 */
export type DocumentUpdateOutcome =
  | {
      /** The changes were committed on the base version (`applied`) or merged into a newer one (`merged`). */
      status: "applied" | "merged";
      /** The committed version. */
      document: DocumentVersion;
      /** Not set when something was committed. */
      current?: undefined;
      /** When `onConflict` resolved a conflict first: the fields it was about. */
      conflicts?: FieldConflict[];
      /**
       * Set when the server had committed this write before (an earlier send
       * whose answer was lost): `document` is the version that commit made.
       */
      duplicate?: true;
      /** How `onConflict` resolved the conflict, if there was one. */
      resolution?: "mine" | "custom";
    }
  | {
      /** Nothing was committed. */
      status: "conflict";
      /** Not set when nothing was committed. */
      document?: undefined;
      /** The latest version, now also the tracked base of this document. */
      current: DocumentVersion;
      /** The conflicting fields. */
      conflicts: FieldConflict[];
      /** `"theirs"` when `onConflict` chose to keep the current version. */
      resolution?: "theirs";
    };

/** Per-call options of {@link DocumentsClient.update}. */
export interface DocumentUpdateOptions {
  /**
   * The version the changes were made on. Default: the last version this
   * client saw (from `get`, `update`, `history`, `rollback` or
   * `document:updated`), or 0 (create) for a document it has not seen.
   * Pass the version your form was loaded from to have edits that others made
   * since reported as conflicts instead of overwritten.
   */
  baseVersion?: number;
  /** Overrides the client's `onConflict` for this call; `null` returns conflicts unresolved. */
  onConflict?: ConflictHandler | null;
  /**
   * The write's mutation id, to find it in `client.outbox.pending` and
   * `onSettled` (default: 32 random hex digits). It must be new: the server
   * answers a second write with an id it has committed as a repeat of the
   * first. At most 128 characters.
   */
  mutationId?: string;
}

/** Versioned documents, as `client.documents`. */
export interface DocumentsClient {
  /** The latest version; rejects with `NOT_FOUND` when the document does not exist. */
  get(type: string, id: string): Promise<DocumentVersion>;
  /**
   * Sets top-level fields (`null` deletes one), based on the last version this
   * client saw. A stale base is merged or refused by the server's resolver;
   * a refusal goes to `onConflict` when there is one.
   *
   * The update goes through the outbox (`client.outbox`): it is kept, in
   * order with the client's other writes, while offline and after a lost
   * answer, and sent with a mutation id so the server commits it once
   * however often it is sent. The promise resolves when the server committed
   * it (or answered a conflict), not when the network gave up; it rejects on
   * a final refusal (`FORBIDDEN`, `NOT_FOUND`, `VERSION_NOT_FOUND`,
   * `DOCUMENT_TOO_LARGE`, `MUTATION_EXPIRED`…), on `DISCARDED` and, with the
   * write kept in a persistent outbox store for the next page, on
   * `CLIENT_CLOSED`.
   */
  update(type: string, id: string, changes: DocumentData, options?: DocumentUpdateOptions): Promise<DocumentUpdateOutcome>;
  /** Up to `limit` committed versions (server default 20, at most 100), newest first. */
  history(type: string, id: string, limit?: number): Promise<DocumentVersion[]>;
  /** Commits the data of `toVersion` as a new version; resolves with it. */
  rollback(type: string, id: string, toVersion: number): Promise<DocumentVersion>;
  /**
   * Calls `callback` when someone else commits a version: of any document of
   * the company when the server has no `authorize` policy; with one, only of
   * the documents this client {@link watch}es. Also called when a re-watch
   * after a reconnection finds a version newer than the client knew (then
   * `changedFields` compares it with the last version the client saw of the
   * document, or lists every field when it saw none). Returns an
   * unsubscribe function.
   *
   * The update always carries the whole document (`data`): where the server
   * sent a watched document's changes only (a delta from the version before),
   * the client applies them to the version it holds, and when it does not
   * hold that version (it missed one, or is still loading the document) it
   * reads the document once and goes on from there. Each version is handed
   * over once: one the client already holds (announced again after a resent
   * write, or read first) is not.
   */
  onUpdated(callback: (update: DocumentUpdated) => void): () => void;
  /**
   * Watches a document: resolves with its latest version (`null` when it
   * does not exist yet) once the server's policy allowed reading it, and
   * from then `onUpdated` hears its commits. The client watches it again
   * after every reconnection; a watch the server refuses then, or ends
   * (`document:dropped`), is reported to `client.onDropped`. Made while
   * offline, the call waits for the connection. Rejects with a
   * `TrussClientError`: `FORBIDDEN`, `NOT_FOUND` (the policy hides it),
   * `TOO_MANY_SUBSCRIPTIONS` (watches count against the server's per-connection
   * cap), `CANCELLED` (unwatched before it was sent), `CLIENT_CLOSED`.
   */
  watch(type: string, id: string): Promise<DocumentVersion | null>;
  /** Stops watching a document; resolves also when it was not watched. */
  unwatch(type: string, id: string): Promise<void>;
  /** The last version this client saw of a document, or `undefined`. */
  knownVersion(type: string, id: string): number | undefined;
  /**
   * The latest version this client holds of a document it {@link watch}es:
   * the same object until another version is held, so a UI can compare it
   * by identity (React's `useSyncExternalStore` does). `undefined` when the
   * document is not watched, its watch has not been answered, or it does
   * not exist yet.
   */
  snapshot(type: string, id: string): DocumentSnapshot | undefined;
  /**
   * Calls `callback` whenever {@link snapshot} of a document changes: a
   * commit by anyone (this client's own writes included), the answer to a
   * watch or a read after a gap, an unwatch, a drop. Returns an unsubscribe
   * function.
   */
  onSnapshot(callback: (document: { type: string; id: string }) => void): () => void;
}

/** A version of a watched document as this client holds it: see {@link DocumentsClient.snapshot}. */
export interface DocumentSnapshot {
  /** The version number. */
  readonly version: number;
  /** The whole document at that version. */
  readonly data: DocumentData;
}

/** How many documents' versions are remembered; the least recently touched go first. */
const MAX_TRACKED = 1000;
/**
 * How many times `onConflict` may be asked within one update. Each new round
 * means another writer committed in between; the bound stops two clients
 * that both insist on "mine" from looping forever.
 */
const MAX_CONFLICT_ROUNDS = 5;

/** A document by kind and id. */
interface DocumentRef {
  type: string;
  id: string;
}

/** The {@link DocumentsClient} of one connection. */
export class DocumentSync implements DocumentsClient {
  private readonly versions = new Map<string, number>();
  /**
   * The latest version held of each watched document: what a delta applies
   * to, and what a re-watch compares with to tell which fields changed.
   */
  private readonly watchedData = new Map<string, DocumentSnapshot>();
  /**
   * Per watched document being loaded (its watch, a read after a gap, or this
   * client's own write on its way), the deltas that arrived meanwhile: they
   * are applied, in order, once the load brought a version.
   */
  private readonly loading = new Map<string, { loaders: number; deltas: DocumentDeltaUpdated[] }>();
  private readonly updated: Listeners<[DocumentUpdated]>;
  private readonly snapshots: Listeners<[{ type: string; id: string }]>;
  private readonly watches: KeptSubscriptions<DocumentRef, { document: DocumentVersion | null }>;
  /** The `onConflict` given to an `update` call, by its mutation id, while the call waits; `null` for "return conflicts unresolved". */
  private readonly callConflictHandlers = new Map<string, ConflictHandler | null>();

  /**
   * @param connection - the connection to send through.
   * @param outbox - where updates wait until the server committed them; it sends them through {@link send}.
   * @param onConflict - the client's conflict handler, if any.
   * @param onListenerFailure - where a throwing `onUpdated` callback is reported.
   * @param onDropped - told when the server ends or refuses again a watch it had accepted.
   */
  constructor(
    private readonly connection: Connection,
    private readonly outbox: Outbox,
    private readonly onConflict: ConflictHandler | undefined,
    onListenerFailure: (error: unknown) => void,
    onDropped: (drop: DroppedSubscription) => void,
  ) {
    this.updated = new Listeners(onListenerFailure);
    this.snapshots = new Listeners(onListenerFailure);
    this.watches = new KeptSubscriptions(connection, {
      id: ({ type, id }) => documentKey(type, id),
      describe: ({ type, id }) => `document ${type}/${id}`,
      // The ack is taken in by `accepted`, which runs right after this resolves; the deltas that came meanwhile wait for it.
      subscribe: (ref) =>
        this.whileLoading(documentKey(ref.type, ref.id), () => connection.request(PROTOCOL_EVENTS.documentWatch, { type: ref.type, id: ref.id }), {
          deferred: true,
        }),
      unsubscribe: (ref) => connection.request(PROTOCOL_EVENTS.documentUnwatch, { type: ref.type, id: ref.id }),
      accepted: (ref, { document }, resumed) => this.watched(ref, document, resumed),
      dropped: ({ type, id }, error) => {
        this.release(type, id);
        onDropped({ kind: "document", type, id, error });
      },
    });
    connection.socket.on(PROTOCOL_EVENTS.documentUpdated, (update: DocumentUpdatedPayload) => {
      if (typeof update?.type !== "string" || typeof update.id !== "string" || typeof update.version !== "number") return;
      if ("delta" in update) {
        // A delta this client cannot read is a gap like any other: the document is read again.
        const readable = typeof update.delta === "object" && update.delta !== null && typeof update.baseVersion === "number";
        this.applyDelta(readable ? update : { ...update, baseVersion: -1, delta: {} });
        return;
      }
      // A version this client holds is not news: the server may announce a commit again (after a repeated write).
      if (this.remember(update)) this.updated.emit(update);
    });
    connection.socket.on(PROTOCOL_EVENTS.documentDropped, (notice: DocumentDropped) => {
      if (typeof notice?.type !== "string" || typeof notice.id !== "string") return;
      this.watches.drop({ type: notice.type, id: notice.id }, fromPayload(notice.error, `The server stopped sending updates of ${notice.type}/${notice.id}.`));
    });
  }

  async get(type: string, id: string): Promise<DocumentVersion> {
    const { document } = await this.connection.request(PROTOCOL_EVENTS.documentGet, { type, id });
    this.remember(document);
    return document;
  }

  async update(type: string, id: string, changes: DocumentData, options: DocumentUpdateOptions = {}): Promise<DocumentUpdateOutcome> {
    if (typeof changes !== "object" || changes === null || Array.isArray(changes)) {
      throw new TypeError("documents.update(type, id, changes) takes the fields to set as an object.");
    }
    const baseVersion = options.baseVersion ?? this.knownVersion(type, id) ?? 0;
    const mutationId = options.mutationId ?? newMutationId();
    if (typeof mutationId !== "string" || mutationId.length === 0 || mutationId.length > MAX_MUTATION_ID_LENGTH) {
      throw new TypeError(`A mutationId must be a string of 1 to ${MAX_MUTATION_ID_LENGTH} characters.`);
    }
    if (options.onConflict !== undefined) this.callConflictHandlers.set(mutationId, options.onConflict);
    try {
      return (await this.outbox.add({ kind: "document", type, id, changes, baseVersion, mutationId })) as DocumentUpdateOutcome;
    } finally {
      this.callConflictHandlers.delete(mutationId);
    }
  }

  /**
   * Sends one queued document write until the server answers for good: a
   * commit (also a repeat's, `duplicate`), or a conflict that `onConflict`
   * does not settle. A settled conflict is sent again with the same mutation
   * id, based on the current version, and kept that way in the outbox.
   */
  async send(write: PendingDocumentWrite, persist: (write: PendingWrite) => Promise<void>): Promise<DocumentUpdateOutcome> {
    const { type, id } = write;
    const perCall = this.callConflictHandlers.get(write.mutationId);
    const onConflict = perCall === undefined ? this.onConflict : (perCall ?? undefined);
    let resolved: { resolution: "mine" | "custom"; conflicts: FieldConflict[] } | undefined;
    for (let round = 0; ; round++) {
      // While the write is on its way, a delta based on the version it commits waits for its ack instead of a read.
      const result = await this.whileLoading(documentKey(type, id), async () => {
        const answer = await this.connection.request(PROTOCOL_EVENTS.documentUpdate, {
          type,
          id,
          baseVersion: write.baseVersion,
          changes: write.changes,
          clientTs: write.createdAt,
          mutationId: write.mutationId,
          mutationAgeMs: Math.max(0, Date.now() - write.createdAt),
          ...(write.baseChanges ? { baseChanges: write.baseChanges } : {}),
        });
        this.remember(answer.status === "conflict" ? answer.current : answer.document);
        return answer;
      });
      if (result.status !== "conflict") {
        return { status: result.status, document: result.document, ...(result.duplicate ? { duplicate: true as const } : {}), ...resolved };
      }
      const { current, conflicts } = result;
      if (!onConflict || round >= MAX_CONFLICT_ROUNDS) return { status: "conflict", current, conflicts };
      const decision = await this.connection.settled(onConflict({ type, id, current, conflicts, changes: write.changes }));
      if (decision === "theirs") return { status: "conflict", current, conflicts, resolution: "theirs" };
      if (decision === "mine") {
        resolved = { resolution: "mine", conflicts };
      } else if (typeof decision === "object" && decision !== null && !Array.isArray(decision)) {
        resolved = { resolution: "custom", conflicts };
        write.changes = decision;
      } else {
        throw new TypeError(`onConflict must return "mine", "theirs" or an object of changes; got ${JSON.stringify(decision)}.`);
      }
      // Settled against the current version, which has every earlier change of this writer in it.
      write.baseVersion = current.version;
      delete write.baseChanges;
      await persist(write);
    }
  }

  async history(type: string, id: string, limit?: number): Promise<DocumentVersion[]> {
    const { versions } = await this.connection.request(PROTOCOL_EVENTS.documentHistory, limit === undefined ? { type, id } : { type, id, limit });
    if (versions[0]) this.remember(versions[0]);
    return versions;
  }

  async rollback(type: string, id: string, toVersion: number): Promise<DocumentVersion> {
    const { document } = await this.connection.request(PROTOCOL_EVENTS.documentRollback, { type, id, toVersion });
    this.remember(document);
    return document;
  }

  onUpdated(callback: (update: DocumentUpdated) => void): () => void {
    return this.updated.add(callback);
  }

  knownVersion(type: string, id: string): number | undefined {
    return this.versions.get(documentKey(type, id));
  }

  async watch(type: string, id: string): Promise<DocumentVersion | null> {
    const { document } = await this.watches.add({ type, id });
    return document;
  }

  snapshot(type: string, id: string): DocumentSnapshot | undefined {
    return this.watchedData.get(documentKey(type, id));
  }

  onSnapshot(callback: (document: { type: string; id: string }) => void): () => void {
    return this.snapshots.add(callback);
  }

  async unwatch(type: string, id: string): Promise<void> {
    this.release(type, id);
    await this.watches.remove({ type, id });
  }

  /** Lets go of every version this client saw, telling `onSnapshot` of each document it held: its session passed to another user. */
  forget(): void {
    const held = [...this.watchedData.keys()];
    this.versions.clear();
    this.watchedData.clear();
    for (const key of held) {
      const [type, id] = JSON.parse(key) as [string, string];
      this.snapshots.emit({ type, id });
    }
  }

  /** Takes in a watch's answer; after a reconnection, tells `onUpdated` about a version committed while offline. */
  private watched({ type, id }: DocumentRef, document: DocumentVersion | null, resumed: boolean): void {
    if (!document) return;
    const key = documentKey(type, id);
    const known = this.versions.get(key);
    const missed = resumed && (known === undefined || document.version > known);
    const before = this.watchedData.get(key)?.data;
    this.remember(document);
    if (!missed) return;
    const { version, data, updatedBy } = document;
    this.updated.emit({ type, id, version, data, updatedBy, changedFields: changedFields(before, data) });
  }

  /**
   * Takes in the delta form of `document:updated`: applied when it is based
   * on the version held, ignored when a newer version is held (this
   * client's own write, or a read, got further), and otherwise kept until
   * the load under way brings a version, or the document is read once.
   */
  private applyDelta(update: DocumentDeltaUpdated): void {
    const { type, id } = update;
    // Only watchers get deltas; this one came after an unwatch, and nothing is held to apply it to.
    if (!this.watches.has({ type, id })) return;
    const key = documentKey(type, id);
    const pending = this.loading.get(key);
    if (pending) {
      pending.deltas.push(update);
      return;
    }
    const held = this.watchedData.get(key);
    if (held && update.version <= held.version) return;
    if (!held || update.baseVersion !== held.version) {
      void this.read({ type, id }, [update]);
      return;
    }
    const data = applyDocumentDelta(held.data, update.delta);
    const { version, updatedBy, changedFields } = update;
    this.remember({ type, id, version, data });
    this.updated.emit({ type, id, version, data, updatedBy, changedFields });
  }

  /** Reads a watched document after a gap, tells `onUpdated` when it is newer than what was held, then applies the deltas that came meanwhile. */
  private async read({ type, id }: DocumentRef, deltas: DocumentDeltaUpdated[]): Promise<void> {
    const key = documentKey(type, id);
    try {
      await this.whileLoading(
        key,
        async () => {
          const { document } = await this.connection.request(PROTOCOL_EVENTS.documentGet, { type, id }).catch((error: unknown) => {
            // Without a version to apply them to, the deltas that waited would only ask for another read.
            this.loading.get(key)?.deltas.splice(0);
            throw error;
          });
          const held = this.watchedData.get(key);
          if (!this.watches.has({ type, id }) || (held && held.version >= document.version)) return;
          this.remember(document);
          const { version, data, updatedBy } = document;
          this.updated.emit({ type, id, version, data, updatedBy, changedFields: changedFields(held?.data, data) });
        },
        { deltas },
      );
    } catch (error) {
      // Offline, or no longer readable: the next watch (after a reconnection) or the next delta loads it again;
      // a refusal that will not pass by itself is the app's to know (a drop of the watch usually follows).
      const failure = error as TrussClientError;
      if (!isRetryableCode(failure.code) && failure.code !== "CLIENT_CLOSED") this.connection.report(failure);
    }
  }

  /**
   * Runs `load` with the document marked as loading, so deltas that arrive
   * meanwhile wait; applies them once no load is left. `deferred` waits one
   * more turn, for a watch whose ack is taken in just after it resolves.
   */
  private async whileLoading<T>(
    key: string,
    load: () => Promise<T>,
    { deltas = [], deferred = false }: { deltas?: DocumentDeltaUpdated[]; deferred?: boolean } = {},
  ): Promise<T> {
    let entry = this.loading.get(key);
    if (!entry) this.loading.set(key, (entry = { loaders: 0, deltas: [] }));
    entry.loaders += 1;
    entry.deltas.push(...deltas);
    try {
      return await load();
    } finally {
      const done = entry;
      const release = () => {
        done.loaders -= 1;
        if (done.loaders > 0 || this.loading.get(key) !== done) return;
        this.loading.delete(key);
        for (const delta of done.deltas.sort((a, b) => a.version - b.version)) this.applyDelta(delta);
      };
      if (deferred) setTimeout(release, 0);
      else release();
    }
  }

  /**
   * Records a version unless a newer one is known (a broadcast can arrive
   * after a newer ack); says whether it was newer than any this client knew.
   */
  private remember({ type, id, version, data }: { type: string; id: string; version: number; data: DocumentData }): boolean {
    const key = documentKey(type, id);
    const known = this.versions.get(key);
    if (known !== undefined && known > version) return false;
    // Re-inserting moves the key to the end, so the Map's order is least recently touched first.
    this.versions.delete(key);
    this.versions.set(key, version);
    if (this.versions.size > MAX_TRACKED) this.versions.delete(this.versions.keys().next().value as string);
    if (!this.watches.has({ type, id })) {
      this.release(type, id);
    } else if ((this.watchedData.get(key)?.version ?? 0) < version) {
      // A version already held is the same data: keeping the object keeps `snapshot` stable for the UI.
      this.watchedData.set(key, { version, data });
      this.snapshots.emit({ type, id });
    }
    return known === undefined || known < version;
  }

  /** Lets go of the version held of a document that is no longer watched. */
  private release(type: string, id: string): void {
    if (this.watchedData.delete(documentKey(type, id))) this.snapshots.emit({ type, id });
  }
}

/** `data` with a delta applied, as a new object; built with `Object.fromEntries` so a `__proto__` field stays data. */
function applyDocumentDelta(data: DocumentData, delta: DocumentDeltaUpdated["delta"]): DocumentData {
  const fields = new Map(Object.entries(data));
  for (const field of delta.unset ?? []) fields.delete(field);
  for (const [field, value] of Object.entries(delta.set ?? {})) fields.set(field, value);
  return Object.fromEntries(fields);
}

/** The top-level fields that differ between two versions' data; every field of `after` when `before` is unknown. */
function changedFields(before: DocumentData | undefined, after: DocumentData): string[] {
  if (!before) return Object.keys(after);
  const fields = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...fields].filter((field) => !sameJson(before[field], after[field]));
}

/** Deep equality of JSON values, ignoring key order. */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false;
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const keys = Object.keys(left);
  return keys.length === Object.keys(right).length && keys.every((key) => Object.hasOwn(right, key) && sameJson(left[key], right[key]));
}

function documentKey(type: string, id: string): string {
  return JSON.stringify([type, id]);
}
