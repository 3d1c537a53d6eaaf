import { confirmedBaseChanges } from "./base-changes.js";
import { applyChanges, ownField } from "./changes.js";
import { deltaBetween, deltaOfFields, deltaPays } from "./delta.js";
import { jsonEqual } from "./json-equal.js";
import type { ConflictResolver, Resolution, ResolveInput } from "./conflict-resolver.js";
import { engineReadsOf, type EngineReads } from "./engine-reads.js";
import { isBuiltInResolve } from "./resolvers.js";
import { isCompareAndSetResult, isHistory, isMutationState, isVersionOrNull } from "./store.js";
import type { CompareAndSetResult, DocumentData, DocumentKey, DocumentStore, DocumentVersion, MutationRef, MutationState } from "./store.js";
import { isTrussError, messageOf, TrussError } from "../kernel/errors.js";
import { DOCUMENT_DELTA_MIN_SAVING_BYTES, PROTOCOL_EVENTS, type DocumentDelta, type DocumentDeltaUpdated, type DocumentUpdated, type DocumentUpdateResult } from "@truss/protocol";
import { type EngineContext, type TrussNamespace } from "../kernel/context.js";
import { storeCall, toTrussError } from "../kernel/failures.js";
import { isThenable } from "../kernel/contract.js";
import { assertDepth, encodeJson, handJson, jsonCopy } from "../kernel/payload.js";
import { companyRoom, documentRoom } from "../kernel/rooms.js";
import { RecentKeys } from "../kernel/recent-keys.js";

/** Server-side document operations, scoped to a company; the same path as the socket events. */
export interface DocumentsApi {
  /** The latest version; rejects `NOT_FOUND`. */
  get(companyId: string, type: string, id: string): Promise<DocumentVersion>;
  /** Applies an update exactly as `document:update` does, broadcasting `document:updated`. */
  update(companyId: string, type: string, id: string, update: DocumentUpdate, updatedBy?: string | null): Promise<DocumentUpdateResult>;
  /** Committed versions, newest first. */
  history(companyId: string, type: string, id: string, limit?: number): Promise<DocumentVersion[]>;
  /** Commits an earlier version's data as a new version. */
  rollback(companyId: string, type: string, id: string, toVersion: number, updatedBy?: string | null): Promise<DocumentVersion>;
}

/**
 * How often an update re-reads and retries after losing a compare-and-set
 * race. Each lost race means another writer committed, so this bounds the
 * work under contention, not correctness.
 */
const MAX_ATTEMPTS = 64;
/**
 * How many commits made with a mutation id a node remembers having
 * announced, so that a resend of one is announced again only by a node that
 * did not announce it (see `repeated`).
 */
const RECENTLY_ANNOUNCED = 10_000;
/** The most versions one `document:history` returns. */
export const MAX_HISTORY_PAGE = 100;
/** The most bytes of versions (as JSON) one `document:history` returns; at least one version is always returned. */
export const MAX_HISTORY_ANSWER_BYTES = 1024 * 1024;

/** Limits on what a document may hold. */
export interface DocumentLimits {
  /** Largest document, in bytes of JSON. */
  maxDocumentBytes: number;
  /** Deepest nesting of a document's data. */
  maxDepth: number;
}

/** Who is writing, for `updatedBy` and to spare the writer's own socket the broadcast. */
export interface Writer {
  /** The user id, or `null` for a server-side write. */
  userId: string | null;
  /** The socket that sent the update; it gets the ack instead of `document:updated`. */
  socketId?: string;
}

/**
 * How much earlier than its reported age a mutation is taken to be made. A
 * client reports the age by its own clock and the message takes time to
 * arrive, so the server's estimate could be a little late; erring early
 * only makes a mutation look older (refused as expired sooner), never newer
 * than a record the store forgot.
 */
const MUTATION_CLOCK_MARGIN_MS = 1000;

/** An update of some fields of a document, based on a version the writer saw. */
export interface DocumentUpdate {
  /** The version the changes are based on; 0 creates the document. */
  baseVersion: number;
  /** Top-level fields to set; `null` deletes a field. */
  changes: DocumentData;
  /**
   * Makes the update idempotent: a mutation id the writer's user already
   * committed to this document is not committed again; the answer is the
   * version it made, with `duplicate: true`.
   */
  mutationId?: string;
  /** How long ago the change was made, in ms (default 0); a mutation older than the store's window is refused `MUTATION_EXPIRED`. */
  mutationAgeMs?: number;
  /**
   * The writer's own committed changes on top of `baseVersion` (earlier
   * writes it queued): the resolver's base is the base version with these
   * applied, so they do not count as someone else's edits. Each field is
   * checked against the history: it counts only when the writer's user
   * committed the last change of that field since the base.
   */
  baseChanges?: DocumentData;
}

/**
 * Versioned document updates: the resolver decides stale writes, the store
 * commits with compare-and-set, and every commit is announced to those who
 * may read it (the company, or with a policy the document's watchers).
 * Socket handlers and server code (REST routes) share this path.
 */
export class DocumentService {
  /** The store's reads for the update path: possibly versions the store shares, which this class never changes nor hands out uncopied. */
  private readonly reads: EngineReads;
  /** `<version> <document room>` of commits made with a mutation id that this node announced (see `repeated`). */
  private readonly announced = new RecentKeys(RECENTLY_ANNOUNCED);

  /**
   * @param audience - who hears a commit: the whole `company` (no policy), or
   * only the sockets `watchers` of the document, whose read the policy allowed.
   */
  constructor(
    private readonly ctx: EngineContext,
    private readonly store: DocumentStore,
    private readonly resolver: ConflictResolver,
    private readonly limits: DocumentLimits,
    private readonly audience: "company" | "watchers",
  ) {
    this.reads = engineReadsOf(store);
  }

  /** The latest version; `NOT_FOUND` when the document does not exist in that company. */
  async get(key: DocumentKey): Promise<DocumentVersion> {
    const document = await this.find(key);
    if (!document) throw notFound(key);
    return document;
  }

  /** The latest version, or `null` when the document does not exist in that company. */
  find(key: DocumentKey): Promise<DocumentVersion | null> {
    return storeCall(this.ctx, "documents", "get", () => this.store.get(key), isVersionOrNull);
  }

  /**
   * Up to `limit` committed versions, newest first, cut short where they
   * would pass {@link MAX_HISTORY_ANSWER_BYTES} (the newest always comes).
   */
  async history(key: DocumentKey, limit = 20): Promise<DocumentVersion[]> {
    const versions = await storeCall(this.ctx, "documents", "history", () => this.store.history(key, Math.min(Math.max(1, limit), MAX_HISTORY_PAGE)), isHistory);
    if (versions.length === 0) throw notFound(key);
    let bytes = 0;
    for (let index = 0; index < versions.length; index++) {
      bytes += Buffer.byteLength(JSON.stringify(versions[index]!.data));
      if (bytes > MAX_HISTORY_ANSWER_BYTES && index > 0) return versions.slice(0, index);
    }
    return versions;
  }

  /**
   * Applies `update.changes` on top of the latest version when the base is
   * current, otherwise asks the resolver; commits with compare-and-set and
   * retries when another writer got in between.
   */
  async update(key: DocumentKey, update: DocumentUpdate, writer: Writer): Promise<DocumentUpdateResult> {
    const documents = this.store;
    const reads = this.reads;
    const mutation = mutationOf(update, writer);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      // Read for this update alone: `current` and `base` may be the versions the store shares, so nothing here
      // changes them, and they leave only as encoded text (the socket's answer) or copied (`api()`).
      const current = await storeCall(this.ctx, "documents", "get", () => reads.get(key), isVersionOrNull);
      let next: DocumentData;
      let status: "applied" | "merged";
      // Whether `next` is the engine's own, so the store may keep it as it is: not when a custom resolver made it.
      let owned = true;
      let before: DocumentData | null = current?.data ?? null;
      if (current === null) {
        if (update.baseVersion !== 0) return this.unlessRepeated(key, mutation, notFound(key), update, writer);
        next = applyChanges({}, update.changes);
        status = "applied";
      } else if (update.baseVersion > current.version) {
        const error = new TrussError(
          "VERSION_NOT_FOUND",
          `Base version ${update.baseVersion} of ${key.type}/${key.id} is newer than the latest (${current.version}); reload the document.`,
        );
        return this.unlessRepeated(key, mutation, error, update, writer);
      } else if (update.baseVersion === current.version) {
        next = applyChanges(current.data, update.changes);
        status = "applied";
      } else {
        const base = await storeCall(this.ctx, "documents", "getVersion", () => reads.getVersion(key, update.baseVersion), isVersionOrNull);
        const own = base && update.baseChanges ? await this.ownBaseChanges(key, update.baseChanges, update.changes, base, current, writer) : null;
        const baseData = base && own ? applyChanges(base.data, own) : (base?.data ?? null);
        const input: ResolveInput = { base: baseData, current: current.data, changes: update.changes, baseVersion: update.baseVersion, currentVersion: current.version };
        const resolve = this.resolver.resolve;
        owned = isBuiltInResolve(resolve);
        // A custom resolver is application code: it gets copies, so what the store shares is out of its reach.
        if (!owned) {
          input.base = copyOf(input.base);
          input.current = before = copyOf(current.data);
        }
        const resolution = owned ? resolve.call(this.resolver, input) : this.resolveWithCustom(input);
        if (resolution.outcome === "conflict") {
          return this.unlessRepeated(key, mutation, { status: "conflict", current, conflicts: resolution.conflicts }, update, writer);
        }
        next = resolution.data;
        status = "merged";
      }
      // The changes were checked for depth where they came in (the dispatcher's payload check, or the server
      // API's copy), and the current version when it was written: only the size is new.
      const json = this.assertFits(key, next, { checkDepth: false });
      const expected = current?.version ?? 0;
      // The fields the resolver left alone are the very values of `before`: compared by reference, never deeply.
      const delta = current ? { baseVersion: current.version, before: before!, after: next } : null;
      const committed = (result: CompareAndSetResult) => {
        if (!result.ok) return;
        this.ctx.metrics.inc("truss_document_updates_total", { outcome: status });
        if (mutation) {
          this.ctx.metrics.inc("truss_document_mutations_total", { outcome: "committed" });
          this.announced.addNew(announcedKey(key, result.document.version));
        }
        this.announce(key, result.document, Object.keys(update.changes), writer, json, delta);
      };
      // The text goes with the data, so the store need not encode it again; a custom resolver's data goes without
      // it, so the store keeps its own copy rather than an object the resolver may still hold. A commit that lands
      // after the store's deadline (the caller was told STORE_UNAVAILABLE) is still announced.
      const result = await handJson(owned ? next : undefined, json, () =>
        storeCall(this.ctx, "documents", "compareAndSet", () => documents.compareAndSet(key, expected, next, writer.userId, mutation), isCompareAndSetResult, committed),
      );
      if (result.ok) {
        committed(result);
        return { status, document: result.document };
      }
      if (result.mutation) return this.repeated(key, result.mutation, update, writer);
    }
    throw new TrussError(
      "STORE_UNAVAILABLE",
      `${key.type}/${key.id} changed ${MAX_ATTEMPTS} times while this update was being applied; retry it.`,
    );
  }

  /**
   * The answer to a resend of an update whose mutation was committed before
   * (its answer was lost), or `null` when it was not (or carries none). For
   * a write the policy now refuses: the commit stands, and saying "refused"
   * would tell the device it was not saved.
   */
  async committedRepeat(key: DocumentKey, update: DocumentUpdate, writer: Writer): Promise<DocumentUpdateResult | null> {
    const mutation = mutationOf(update, writer);
    if (!mutation) return null;
    const documents = this.store;
    const state = await storeCall(this.ctx, "documents", "mutation", () => documents.mutation(key, mutation), isMutationState);
    return state.state === "committed" ? this.repeated(key, state, update, writer) : null;
  }

  /**
   * An update that does not reach the compare-and-set (which checks its
   * mutation atomically itself): when it carries a mutation the store has
   * seen, the answer is that mutation's (its repeat may well look stale or
   * conflicting), else `outcome`, thrown when it is an error.
   */
  private async unlessRepeated(
    key: DocumentKey,
    mutation: MutationRef | undefined,
    outcome: TrussError | DocumentUpdateResult,
    update: DocumentUpdate,
    writer: Writer,
  ): Promise<DocumentUpdateResult> {
    if (mutation) {
      const documents = this.store;
      const state = await storeCall(this.ctx, "documents", "mutation", () => documents.mutation(key, mutation), isMutationState);
      if (state.state !== "new") return this.repeated(key, state, update, writer);
    }
    if (outcome instanceof Error) throw outcome;
    if (outcome.status === "conflict") this.ctx.metrics.inc("truss_document_updates_total", { outcome: "conflict" });
    return outcome;
  }

  /**
   * The writer's `baseChanges` that the history confirms as its own
   * ({@link confirmedBaseChanges}); a claim on someone else's edit is dropped.
   */
  private ownBaseChanges(
    key: DocumentKey,
    claimed: DocumentData,
    changes: DocumentData,
    base: DocumentVersion,
    current: DocumentVersion,
    writer: Writer,
  ): Promise<DocumentData> {
    const reads = this.reads;
    return confirmedBaseChanges({
      claimed,
      changes,
      base,
      current,
      writer: writer.userId,
      versionAt: (version) => storeCall(this.ctx, "documents", "getVersion", () => reads.getVersion(key, version), isVersionOrNull),
    });
  }

  /**
   * The answer to a mutation that is not new: the version its first commit
   * made (the latest when that one left the history), or `MUTATION_EXPIRED`.
   *
   * When that version is still the latest and this node did not announce
   * it, it is announced, as a repeated idempotent `toUser` is pushed again:
   * the first commit's store call may have failed after the store acted (a
   * dropped connection, ioredis's `commandTimeout`, a command ioredis sent
   * again on reconnect), so nobody was told of it, and its watchers would
   * otherwise wait for the next commit. The first commit may have been
   * announced by another node, so a version can reach a client twice; one it
   * holds it drops (`@truss/client` does). A version since superseded is not
   * announced: its successor's announcement reached them.
   */
  private async repeated(key: DocumentKey, state: Exclude<MutationState, { state: "new" }>, update: DocumentUpdate, writer: Writer): Promise<DocumentUpdateResult> {
    if (state.state === "expired") {
      this.ctx.metrics.inc("truss_document_mutations_total", { outcome: "expired" });
      throw new TrussError(
        "MUTATION_EXPIRED",
        `This change to ${key.type}/${key.id} is older than the server remembers writes for, so it may have been saved already; it was not applied again. Reload the document and redo it if it is missing.`,
      );
    }
    this.ctx.metrics.inc("truss_document_mutations_total", { outcome: "duplicate" });
    const documents = this.store;
    // The latest first: a repeat is most often of the last commit (its ack was lost), and then one read does.
    const latest = await storeCall(this.ctx, "documents", "get", () => documents.get(key), isVersionOrNull);
    if (!latest) throw notFound(key);
    if (latest.version === state.version) {
      if (this.announced.addNew(announcedKey(key, latest.version))) this.announce(key, latest, Object.keys(update.changes), writer, undefined, null);
      return { status: "applied", document: latest, duplicate: true };
    }
    const document = (await storeCall(this.ctx, "documents", "getVersion", () => documents.getVersion(key, state.version), isVersionOrNull)) ?? latest;
    return { status: "applied", document, duplicate: true };
  }

  /** Commits the data of an earlier version as a new version; history is never rewritten. */
  async rollback(key: DocumentKey, toVersion: number, writer: Writer): Promise<DocumentVersion> {
    const documents = this.store;
    const target = await storeCall(this.ctx, "documents", "getVersion", () => documents.getVersion(key, toVersion), isVersionOrNull);
    if (!target) {
      throw new TrussError("VERSION_NOT_FOUND", `Version ${toVersion} of ${key.type}/${key.id} is not in the history.`);
    }
    const json = this.assertFits(key, target.data, { checkDepth: true });
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.get(key);
      // The target is a fresh copy from the store, the engine's own: its text goes with it.
      const committed = (result: CompareAndSetResult) => {
        if (!result.ok) return;
        this.ctx.metrics.inc("truss_document_updates_total", { outcome: "rollback" });
        const changed = [...new Set([...Object.keys(current.data), ...Object.keys(target.data)])].filter(
          (field) => !jsonEqual(ownField(current.data, field), ownField(target.data, field)),
        );
        this.announce(key, result.document, changed, writer, json, { baseVersion: current.version, fields: changed, after: target.data });
      };
      const result = await handJson(target.data, json, () =>
        storeCall(this.ctx, "documents", "compareAndSet", () => documents.compareAndSet(key, current.version, target.data, writer.userId), isCompareAndSetResult, committed),
      );
      if (result.ok) {
        committed(result);
        return result.document;
      }
    }
    throw new TrussError("STORE_UNAVAILABLE", `${key.type}/${key.id} kept changing during the rollback; retry it.`);
  }

  /** The server-side API (`engine.documents`): the same path as the socket events, for a company given by the caller. */
  api(): DocumentsApi {
    // An update's and a rollback's answer may hold what the store shares with the engine's next reads (the
    // committed data, the current version of a conflict): the application gets a copy it may change freely.
    return {
      get: (companyId, type, id) => this.get({ companyId, type, id }),
      // Async, so a refused copy rejects; the copy itself is made at the call, before the app can change its objects.
      update: async (companyId, type, id, update, updatedBy = null) =>
        structuredClone(await this.update({ companyId, type, id }, this.copied(update, `${type}/${id}`), { userId: updatedBy })),
      history: (companyId, type, id, limit) => this.history({ companyId, type, id }, limit),
      rollback: async (companyId, type, id, toVersion, updatedBy = null) => structuredClone(await this.rollback({ companyId, type, id }, toVersion, { userId: updatedBy })),
    };
  }

  /** A server-side update with its changes checked and copied as JSON: a value JSON cannot carry is `INVALID_PAYLOAD`, named by its path. */
  private copied(update: DocumentUpdate, name: string): DocumentUpdate {
    const copy = (changes: DocumentData, what: string): DocumentData => {
      try {
        // The store is handed the merged document, never these changes: the copy alone, without recording its text.
        return jsonCopy(changes, { maxDepth: this.limits.maxDepth, maxBytes: this.limits.maxDocumentBytes }, what).value as DocumentData;
      } catch (error) {
        if (!(isTrussError(error) && error.code === "PAYLOAD_TOO_LARGE")) throw error;
        throw new TrussError("DOCUMENT_TOO_LARGE", `${what} are over ${this.limits.maxDocumentBytes} bytes as JSON, more than a document may hold; nothing was stored.`);
      }
    };
    return {
      ...update,
      changes: copy(update.changes, `The changes to ${name}`),
      ...(update.baseChanges === undefined ? {} : { baseChanges: copy(update.baseChanges, `The base changes to ${name}`) }),
    };
  }

  /**
   * Calls a custom resolver, which is application code, and checks its answer.
   * One that throws (a `TrussError` keeps its code), answers a promise
   * (`resolve` is synchronous) or answers outside the `Resolution` contract is
   * `HANDLER_ERROR`, logged: the application's code fails the same way on the
   * same write, so clients take it as final rather than sending the write
   * again and again (and the writes queued behind it with it). A promise it
   * answered is handled here, so its rejection is never left unhandled, which
   * would end the process. Merged data is taken as a JSON copy within the depth limit, as a client's
   * changes are: a field set to `undefined` is gone, as the store keeps it,
   * and a value JSON cannot carry (a cycle, a BigInt) is the resolver's bug.
   */
  private resolveWithCustom(input: ResolveInput): Resolution {
    const { name } = this.resolver;
    let answer: unknown;
    try {
      answer = this.resolver.resolve(input);
      if (isThenable(answer)) {
        Promise.resolve(answer).catch(() => undefined);
        throw new TypeError("it answered a promise; resolve must answer synchronously");
      }
      if (isResolution(answer)) return answer.outcome === "merged" ? { outcome: "merged", data: this.resolvedData(answer.data) } : answer;
      throw new TypeError("it answered neither { outcome: \"merged\", data } with an object of data nor { outcome: \"conflict\", conflicts }");
    } catch (error) {
      throw toTrussError(error, { code: "HANDLER_ERROR", message: "The document's conflict resolver failed on the server; it has been logged." }, { logger: this.ctx.logger, what: `conflict resolver "${String(name)}" failed` });
    }
  }

  /** A custom resolver's merged data as JSON would carry it; the size is checked with the commit's ({@link assertFits}). */
  private resolvedData(data: DocumentData): DocumentData {
    try {
      return jsonCopy(data, { maxDepth: this.limits.maxDepth, maxBytes: Number.MAX_SAFE_INTEGER }, "its merged data").value as DocumentData;
    } catch (error) {
      // Not the client's payload: the resolver's own, so not INVALID_PAYLOAD.
      throw new TypeError(messageOf(error));
    }
  }

  /** Refuses data over the document limits before it reaches the store; returns its JSON, which goes to the store with it. */
  private assertFits(key: DocumentKey, data: DocumentData, { checkDepth }: { checkDepth: boolean }): string | undefined {
    if (checkDepth) assertDepth(data, this.limits.maxDepth, `${key.type}/${key.id}`);
    try {
      return encodeJson(data, this.limits.maxDocumentBytes, `${key.type}/${key.id}`);
    } catch (error) {
      if (isTrussError(error) && error.code === "PAYLOAD_TOO_LARGE") {
        throw new TrussError(
          "DOCUMENT_TOO_LARGE",
          `${key.type}/${key.id} would exceed ${this.limits.maxDocumentBytes} bytes as JSON; nothing was stored. Split it or remove fields.`,
        );
      }
      throw error;
    }
  }

  /**
   * Tells those who may read the document about a commit. Watchers get the
   * delta from the version before when it pays ({@link deltaPays}): they
   * hold that version, or read the document once. Everyone else (without a
   * policy, the company's sockets that do not watch it) gets the whole
   * document, as does everyone when the document was created or the delta
   * would save too little.
   */
  private announce(key: DocumentKey, document: DocumentVersion, changedFields: string[], writer: Writer, json: string | undefined, delta: DeltaSource | null): void {
    const { type, id, version, data, updatedBy } = document;
    const whole: DocumentUpdated = { type, id, version, data, updatedBy, changedFields };
    const namespace = this.ctx.namespace();
    const changes = delta && json !== undefined && mayPay(json) ? deltaFrom(delta) : null;
    if (!changes || !deltaPays(changes, Buffer.byteLength(json!))) {
      const room = this.audience === "company" ? companyRoom(key.companyId) : documentRoom(key.companyId, key.type, key.id);
      exceptWriter(namespace.to(room), writer).emit(PROTOCOL_EVENTS.documentUpdated, whole);
      return;
    }
    const watchers = documentRoom(key.companyId, key.type, key.id);
    const update: DocumentDeltaUpdated = { type, id, version, baseVersion: delta!.baseVersion, delta: changes, updatedBy, changedFields };
    exceptWriter(namespace.to(watchers), writer).emit(PROTOCOL_EVENTS.documentUpdated, update);
    if (this.audience === "company") exceptWriter(namespace.to(companyRoom(key.companyId)).except(watchers), writer).emit(PROTOCOL_EVENTS.documentUpdated, whole);
  }
}

/**
 * What a commit's delta is made from, only once it may pay: an update's data
 * before and after (compared by reference), or the fields a rollback changed.
 */
type DeltaSource = { baseVersion: number } & ({ before: DocumentData; after: DocumentData } | { fields: string[]; after: DocumentData });

function deltaFrom(source: DeltaSource): DocumentDelta {
  return "fields" in source ? deltaOfFields(source.after, source.fields) : deltaBetween(source.before, source.after);
}

/** A copy of data the store may share, for code outside the engine (a custom resolver). */
function copyOf<T extends DocumentData | null>(data: T): T {
  return data === null ? data : (JSON.parse(JSON.stringify(data)) as T);
}

/** What {@link DocumentService} remembers of an announced commit: the version has no space, so it reads one way. */
function announcedKey(key: DocumentKey, version: number): string {
  return `${version} ${documentRoom(key.companyId, key.type, key.id)}`;
}

/** A broadcast to `target` without the writer's own socket, which gets the ack instead. */
function exceptWriter(target: ReturnType<TrussNamespace["to"]>, writer: Writer): ReturnType<TrussNamespace["to"]> {
  return writer.socketId ? target.except(writer.socketId) : target;
}

/** The store's record of an update's mutation: the id scoped to the writer's user, and when it was made (server clock, erring early). */
function mutationOf(update: DocumentUpdate, writer: Writer): MutationRef | undefined {
  if (update.mutationId === undefined) return undefined;
  const user = writer.userId ?? "";
  return {
    id: `${user.length}:${user}:${update.mutationId}`,
    writer: user,
    madeAt: Date.now() - (update.mutationAgeMs ?? 0) - MUTATION_CLOCK_MARGIN_MS,
  };
}

/** Whether a document this size could save enough with a delta: a UTF-16 unit is at most three UTF-8 bytes, so a short text rules it out unmeasured. */
function mayPay(json: string): boolean {
  return json.length * 3 >= DOCUMENT_DELTA_MIN_SAVING_BYTES;
}

function notFound(key: DocumentKey): TrussError {
  return new TrussError("NOT_FOUND", `No document ${key.type}/${key.id} in this company.`);
}

/** A resolver's answer the engine can use: merged with an object of data, or a conflict with its list. */
function isResolution(answer: unknown): answer is Resolution {
  if (typeof answer !== "object" || answer === null) return false;
  const resolution = answer as Resolution;
  if (resolution.outcome === "conflict") return Array.isArray(resolution.conflicts);
  return resolution.outcome === "merged" && typeof resolution.data === "object" && resolution.data !== null && !Array.isArray(resolution.data);
}
