import type { Project } from "../catalog.js";
import type { Db } from "../db.js";
import { newId } from "./ids.js";

const COLUMNS = "id, name, site, status, budget, spent, updated_at AS updatedAt";

/** The fields of a project a user may set. */
export type ProjectChanges = Partial<Pick<Project, "name" | "site" | "status" | "budget">>;

/** Projects, each call scoped to one company. */
export function createProjects(db: Db, now: () => number = Date.now) {
  const list = db.prepare<[string], Project>(`SELECT ${COLUMNS} FROM projects WHERE company_id = ? ORDER BY name`);
  const get = db.prepare<[string, string], Project>(`SELECT ${COLUMNS} FROM projects WHERE company_id = ? AND id = ?`);
  const insert = db.prepare(
    "INSERT INTO projects (id, company_id, name, site, status, budget, spent, updated_at) VALUES (@id, @companyId, @name, @site, @status, @budget, 0, @updatedAt)",
  );
  const update = db.prepare(
    `UPDATE projects SET name = @name, site = @site, status = @status, budget = @budget, updated_at = @updatedAt
     WHERE company_id = @companyId AND id = @id`,
  );
  const addSpent = db.prepare("UPDATE projects SET spent = spent + ?, updated_at = ? WHERE company_id = ? AND id = ?");
  const remove = db.prepare("DELETE FROM projects WHERE company_id = ? AND id = ?");

  return {
    list: (companyId: string) => list.all(companyId),
    get: (companyId: string, id: string) => get.get(companyId, id),
    create(companyId: string, fields: Pick<Project, "name" | "site" | "status" | "budget">): Project {
      const id = newId("p");
      insert.run({ ...fields, id, companyId, updatedAt: now() });
      return get.get(companyId, id)!;
    },
    /** Applies the changes; `undefined` when the company has no such project. */
    update(companyId: string, id: string, changes: ProjectChanges): Project | undefined {
      const current = get.get(companyId, id);
      if (!current) return undefined;
      update.run({ ...current, ...changes, companyId, id, updatedAt: now() });
      return get.get(companyId, id);
    },
    /** Books an approved expense or a paid invoice against the project. */
    addSpent(companyId: string, id: string, amount: number): Project | undefined {
      addSpent.run(amount, now(), companyId, id);
      return get.get(companyId, id);
    },
    /** Deletes the project with its tasks, expenses and invoices; `false` when it was not the company's. */
    remove: (companyId: string, id: string) => remove.run(companyId, id).changes > 0,
  };
}

/** See {@link createProjects}. */
export type Projects = ReturnType<typeof createProjects>;
