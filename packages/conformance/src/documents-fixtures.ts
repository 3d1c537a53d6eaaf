import assert from "node:assert/strict";
import type { CompareAndSetResult, DocumentKey, DocumentStore, DocumentStoreOptions, MutationRef } from "@truss/core";
import type { DocumentData, DocumentVersion } from "@truss/protocol";
import { sleep, uniqueId } from "./fixtures.js";
import type { CaseRegistrar } from "./registrar.js";

/** The registrar every document case file uses. */
export type DocumentCases = CaseRegistrar<DocumentStore, DocumentStoreOptions>;

/** A project in a fresh company, so no two cases or runs share a document. */
export function freshKey(overrides: Partial<DocumentKey> = {}): DocumentKey {
  return { companyId: uniqueId("company"), type: "project", id: uniqueId("project"), ...overrides };
}

/** A mutation of `writer` made now, or `ageMs` ago, with an id no other case uses. */
export function freshMutation(ageMs = 0, writer = "user-ann"): MutationRef {
  return { id: uniqueId("mutation"), writer, madeAt: Date.now() - ageMs };
}

/** Asserts that the write committed and returns the version it committed. */
export function committed(result: CompareAndSetResult): DocumentVersion {
  assert.ok(result.ok, `compareAndSet committed (current: ${JSON.stringify(result.ok ? null : result.current)})`);
  return result.document;
}

/** Commits `count` versions in a row, each with `{ revision }` set to its version. */
export async function commitVersions(
  store: DocumentStore,
  key: DocumentKey,
  count: number,
): Promise<DocumentVersion[]> {
  const versions: DocumentVersion[] = [];
  for (let version = 1; version <= count; version += 1) {
    versions.push(committed(await store.compareAndSet(key, version - 1, { revision: version }, "user-1")));
  }
  return versions;
}

/**
 * Commits `count` mutations of `writer` on the latest version, each a few
 * milliseconds after the one before (and after whatever came earlier), so
 * which records are the oldest is unambiguous.
 */
export async function commitApart(store: DocumentStore, key: DocumentKey, writer: string, count: number): Promise<MutationRef[]> {
  const mutations: MutationRef[] = [];
  for (let index = 0; index < count; index += 1) {
    await sleep(2);
    const mutation = freshMutation(0, writer);
    mutations.push(mutation);
    const latest = (await store.get(key))?.version ?? 0;
    committed(await store.compareAndSet(key, latest, { writer, revision: latest + 1 }, writer, mutation));
  }
  return mutations;
}

/** The `data` of each version, for comparing histories by content. */
export function dataOf(versions: readonly (DocumentVersion | null)[]): (DocumentData | null)[] {
  return versions.map((version) => version?.data ?? null);
}
