import type { Db } from "../db.js";

/**
 * Which project a document belongs to. Kept beside the document store rather
 * than in the document's data, which every editor of it can change.
 */
export function createDocumentProjects(db: Db) {
  const projectOf = db.prepare<[string, string, string], { projectId: string }>(
    "SELECT project_id AS projectId FROM project_documents WHERE company_id = ? AND doc_type = ? AND doc_id = ?",
  );
  const ofCompany = db.prepare<[string], { type: string; id: string; projectId: string }>(
    "SELECT doc_type AS type, doc_id AS id, project_id AS projectId FROM project_documents WHERE company_id = ?",
  );
  return {
    /** The document's project, or `null` for a company-wide document (or one that does not exist). */
    projectOf: (companyId: string, type: string, id: string): string | null => projectOf.get(companyId, type, id)?.projectId ?? null,
    /** Every document of the company that belongs to a project, keyed `type/id`. */
    all(companyId: string): Map<string, string> {
      return new Map(ofCompany.all(companyId).map((row) => [`${row.type}/${row.id}`, row.projectId]));
    },
  };
}

/** See {@link createDocumentProjects}. */
export type DocumentProjects = ReturnType<typeof createDocumentProjects>;
