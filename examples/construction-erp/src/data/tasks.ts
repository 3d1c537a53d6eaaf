import type { Task } from "../catalog.js";
import type { Db } from "../db.js";
import { newId } from "./ids.js";

const COLUMNS = "id, project_id AS projectId, title, status, assignee_id AS assigneeId, due_date AS dueDate, updated_at AS updatedAt";

/** Tasks, each call scoped to one company. */
export function createTasks(db: Db, now: () => number = Date.now) {
  const list = db.prepare<[string], Task>(`SELECT ${COLUMNS} FROM tasks WHERE company_id = ? ORDER BY due_date, title`);
  const get = db.prepare<[string, string], Task>(`SELECT ${COLUMNS} FROM tasks WHERE company_id = ? AND id = ?`);
  const insert = db.prepare(
    "INSERT INTO tasks (id, company_id, project_id, title, status, assignee_id, due_date, updated_at) VALUES (@id, @companyId, @projectId, @title, 'open', @assigneeId, @dueDate, @updatedAt)",
  );
  const assign = db.prepare("UPDATE tasks SET assignee_id = ?, updated_at = ? WHERE company_id = ? AND id = ?");

  return {
    list: (companyId: string) => list.all(companyId),
    get: (companyId: string, id: string) => get.get(companyId, id),
    create(companyId: string, fields: Pick<Task, "projectId" | "title" | "assigneeId" | "dueDate">): Task {
      const id = newId("t");
      insert.run({ ...fields, id, companyId, updatedAt: now() });
      return get.get(companyId, id)!;
    },
    /** Assigns the task; `undefined` when the company has no such task. */
    assign(companyId: string, id: string, assigneeId: string): Task | undefined {
      if (assign.run(assigneeId, now(), companyId, id).changes === 0) return undefined;
      return get.get(companyId, id);
    },
  };
}

/** See {@link createTasks}. */
export type Tasks = ReturnType<typeof createTasks>;
