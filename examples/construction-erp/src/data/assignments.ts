import type { Db } from "../db.js";

/** Who works on which project; a subcontractor sees nothing else. Each call is scoped to one company. */
export function createAssignments(db: Db) {
  const ofUser = db.prepare<[string, string], { projectId: string }>(
    "SELECT project_id AS projectId FROM project_assignments WHERE company_id = ? AND user_id = ? ORDER BY project_id",
  );
  return {
    /** The ids of the projects the user is assigned to. */
    projectsOf: (companyId: string, userId: string): string[] => ofUser.all(companyId, userId).map((row) => row.projectId),
  };
}

/** See {@link createAssignments}. */
export type Assignments = ReturnType<typeof createAssignments>;
