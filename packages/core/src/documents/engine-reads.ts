import type { DocumentKey, DocumentStore, DocumentVersion } from "./store.js";

/**
 * Reads a store built into Truss offers the engine's update path besides the
 * public {@link DocumentStore} methods: the same answers, but the version may
 * be one the store keeps and hands to every such read, instead of a fresh
 * decode each time. So these reads come with a contract the public ones do
 * not need: the engine never changes what they return, never hands it to
 * application code uncopied (a custom resolver gets a copy, `engine.documents`
 * answers with copies), and only lets it reach a client as encoded text.
 * Not exported: no application code can call them or get what they return.
 */
export const ENGINE_READS: unique symbol = Symbol("truss.documents.engineReads");

/** See {@link ENGINE_READS}. */
export interface EngineReads {
  /** The latest version, as {@link DocumentStore.get}, shared: never to be changed or handed out uncopied. */
  get(key: DocumentKey): Promise<DocumentVersion | null>;
  /** A committed version, as {@link DocumentStore.getVersion}, shared likewise. */
  getVersion(key: DocumentKey, version: number): Promise<DocumentVersion | null>;
}

/** The store's engine reads, or its public methods (each answer a fresh copy) when it has none. */
export function engineReadsOf(store: DocumentStore): EngineReads {
  return (store as DocumentStore & { [ENGINE_READS]?: EngineReads })[ENGINE_READS] ?? store;
}
