import {
  PROTOCOL_EVENTS,
  type DocumentData,
  type DocumentUpdated,
  type DocumentVersion,
  type FieldConflict,
} from "@truss/protocol";
import type { Connection } from "./connection.js";
import { Listeners } from "./listeners.js";

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
}

/** Versioned documents, as `client.documents`. */
export interface DocumentsClient {
  /** The latest version; rejects with `NOT_FOUND` when the document does not exist. */
  get(type: string, id: string): Promise<DocumentVersion>;
  /**
   * Sets top-level fields (`null` deletes one), based on the last version this
   * client saw. A stale base is merged or refused by the server's resolver;
   * a refusal goes to `onConflict` when there is one.
   */
  update(type: string, id: string, changes: DocumentData, options?: DocumentUpdateOptions): Promise<DocumentUpdateOutcome>;
  /** Up to `limit` committed versions (server default 20, at most 100), newest first. */
  history(type: string, id: string, limit?: number): Promise<DocumentVersion[]>;
  /** Commits the data of `toVersion` as a new version; resolves with it. */
  rollback(type: string, id: string, toVersion: number): Promise<DocumentVersion>;
  /** Calls `callback` when someone else in the company commits a version; returns an unsubscribe function. */
  onUpdated(callback: (update: DocumentUpdated) => void): () => void;
  /** The last version this client saw of a document, or `undefined`. */
  knownVersion(type: string, id: string): number | undefined;
}

/** How many documents' versions are remembered; the least recently touched go first. */
const MAX_TRACKED = 1000;
/**
 * How many times `onConflict` may be asked within one update. Each new round
 * means another writer committed in between; the bound stops two clients
 * that both insist on "mine" from looping forever.
 */
const MAX_CONFLICT_ROUNDS = 5;

/** The {@link DocumentsClient} of one connection. */
export class DocumentSync implements DocumentsClient {
  private readonly versions = new Map<string, number>();
  private readonly updated: Listeners<[DocumentUpdated]>;

  constructor(
    private readonly connection: Connection,
    private readonly onConflict: ConflictHandler | undefined,
    onListenerFailure: (error: unknown) => void,
  ) {
    this.updated = new Listeners(onListenerFailure);
    connection.socket.on(PROTOCOL_EVENTS.documentUpdated, (update: DocumentUpdated) => {
      this.remember(update.type, update.id, update.version);
      this.updated.emit(update);
    });
  }

  async get(type: string, id: string): Promise<DocumentVersion> {
    const { document } = await this.connection.request(PROTOCOL_EVENTS.documentGet, { type, id });
    this.remember(type, id, document.version);
    return document;
  }

  async update(type: string, id: string, changes: DocumentData, options: DocumentUpdateOptions = {}): Promise<DocumentUpdateOutcome> {
    const onConflict = options.onConflict === undefined ? this.onConflict : (options.onConflict ?? undefined);
    let baseVersion = options.baseVersion ?? this.knownVersion(type, id) ?? 0;
    let pending = changes;
    let resolved: { resolution: "mine" | "custom"; conflicts: FieldConflict[] } | undefined;
    for (let round = 0; ; round++) {
      const result = await this.connection.request(PROTOCOL_EVENTS.documentUpdate, { type, id, baseVersion, changes: pending, clientTs: Date.now() });
      if (result.status !== "conflict") {
        this.remember(type, id, result.document.version);
        return { status: result.status, document: result.document, ...resolved };
      }
      const { current, conflicts } = result;
      this.remember(type, id, current.version);
      if (!onConflict || round >= MAX_CONFLICT_ROUNDS) return { status: "conflict", current, conflicts };
      const decision = await onConflict({ type, id, current, conflicts, changes: pending });
      if (decision === "theirs") return { status: "conflict", current, conflicts, resolution: "theirs" };
      if (decision === "mine") {
        resolved = { resolution: "mine", conflicts };
      } else if (typeof decision === "object" && decision !== null && !Array.isArray(decision)) {
        resolved = { resolution: "custom", conflicts };
        pending = decision;
      } else {
        throw new TypeError(`onConflict must return "mine", "theirs" or an object of changes; got ${JSON.stringify(decision)}.`);
      }
      baseVersion = current.version;
    }
  }

  async history(type: string, id: string, limit?: number): Promise<DocumentVersion[]> {
    const { versions } = await this.connection.request(PROTOCOL_EVENTS.documentHistory, limit === undefined ? { type, id } : { type, id, limit });
    if (versions[0]) this.remember(type, id, versions[0].version);
    return versions;
  }

  async rollback(type: string, id: string, toVersion: number): Promise<DocumentVersion> {
    const { document } = await this.connection.request(PROTOCOL_EVENTS.documentRollback, { type, id, toVersion });
    this.remember(type, id, document.version);
    return document;
  }

  onUpdated(callback: (update: DocumentUpdated) => void): () => void {
    return this.updated.add(callback);
  }

  knownVersion(type: string, id: string): number | undefined {
    return this.versions.get(documentKey(type, id));
  }

  /** Records a version unless a newer one is known (a broadcast can arrive after a newer ack). */
  private remember(type: string, id: string, version: number): void {
    const key = documentKey(type, id);
    const known = this.versions.get(key);
    if (known !== undefined && known > version) return;
    // Re-inserting moves the key to the end, so the Map's order is least recently touched first.
    this.versions.delete(key);
    this.versions.set(key, version);
    if (this.versions.size > MAX_TRACKED) this.versions.delete(this.versions.keys().next().value as string);
  }
}

function documentKey(type: string, id: string): string {
  return JSON.stringify([type, id]);
}
