import type { ErpAccess } from "@truss/example-construction-erp/access";
import type { ErpCatalog } from "@truss/example-construction-erp/catalog";
import type { Repositories } from "@truss/example-construction-erp/data";
import { notification, sendToUser } from "@truss/example-construction-erp/notifications";
import type { Decision } from "@truss/example-construction-erp/policy";
import { projectTopic } from "@truss/example-construction-erp/topics";
import type { RealtimeEngine } from "@truss/core";
import { Router, type Request, type Response } from "express";

/** `req.realtime` is set by `realtimeHandler`; this view of it carries the catalog's types. */
const realtimeOf = (req: Request) => req.realtime as RealtimeEngine<ErpCatalog>;

const notFound = (what: string, id: string) => ({ error: { code: "NOT_FOUND", message: `No ${what} ${id} in your company.` } });

/**
 * Sends the policy's refusal the way the demo's REST API does (404 for
 * `NOT_FOUND`, 403 for `FORBIDDEN`, `{ error: { code, message } }`) and
 * answers `false`; answers `true` when the policy allows.
 */
function allowed(res: Response, decision: Decision): boolean {
  if (decision === true) return true;
  res.status(decision.code === "NOT_FOUND" ? 404 : 403).json({ error: decision });
  return false;
}

/**
 * Projects: list and change. A subcontractor sees only the projects they are
 * assigned to; a change goes to the project's topic as `project:updated`, so
 * it reaches only the people the policy lets subscribe to it.
 */
export function projectRoutes(repos: Repositories, access: ErpAccess): Router {
  const router = Router();
  const about = (id: string) => ({ project: id, resource: `project ${id}` });
  router.get("/projects", (req, res) => {
    res.json(access.visible(req.principal, repos.projects.list(req.principal.companyId), (project) => ({ action: "project:read", ...about(project.id) })));
  });
  router.patch("/projects/:id", (req, res) => {
    const { companyId } = req.principal;
    const { id } = req.params;
    if (!repos.projects.get(companyId, id)) {
      res.status(404).json(notFound("project", id));
      return;
    }
    if (!allowed(res, access.decide(req.principal, { action: "project:edit", ...about(id) }))) return;
    const { budget, status, name } = (req.body ?? {}) as Record<string, unknown>;
    if ((budget !== undefined && (typeof budget !== "number" || budget < 0)) || (name !== undefined && typeof name !== "string")) {
      res.status(400).json({ error: { code: "INVALID_PAYLOAD", message: "budget must be a non-negative number and name a string." } });
      return;
    }
    const changes = Object.fromEntries(Object.entries({ budget, status, name }).filter(([, value]) => value !== undefined));
    const project = repos.projects.update(companyId, id, changes);
    if (!project) {
      res.status(404).json(notFound("project", id));
      return;
    }
    realtimeOf(req).toTopic(companyId, projectTopic(id)).emit("project:updated", project);
    res.json(project);
  });
  return router;
}

/**
 * Expense approval: the submitter gets `expense:approved` and a notification
 * through their inbox (durable, so an offline phone gets it on reconnect),
 * and the project's topic sees its new spend. A subcontractor sees only their
 * own expenses, on their projects.
 */
export function expenseRoutes(repos: Repositories, access: ErpAccess): Router {
  const router = Router();
  router.get("/expenses", (req, res) => {
    const expenses = repos.expenses.list(req.principal.companyId);
    res.json(access.visible(req.principal, expenses, (expense) => ({ action: "expense:read", project: expense.projectId, owner: expense.submittedBy })));
  });
  // Express 5 (this example's) forwards a rejected async route to next(); on Express 4, catch and call next(error) yourself.
  router.post("/expenses/:id/approve", async (req, res) => {
    const { companyId, userId } = req.principal;
    if (!allowed(res, access.decide(req.principal, { action: "expense:decide" }))) return;
    const existing = repos.expenses.get(companyId, req.params.id);
    if (!existing) {
      res.status(404).json(notFound("expense", req.params.id));
      return;
    }
    const decided = repos.expenses.decide(companyId, existing.id, { status: "approved", decidedBy: userId, reason: null });
    if (!decided) {
      res.status(409).json({ error: { code: "ALREADY_DECIDED", message: `Expense ${existing.id} was already ${existing.status}.` } });
      return;
    }
    const realtime = realtimeOf(req);
    const submitter = { companyId, userId: decided.expense.submittedBy };
    await sendToUser(realtime, console, submitter, "expense:approved", decided.expense);
    await sendToUser(realtime, console, submitter, "notification:new", notification("expense", "Expense approved", `"${decided.expense.description}" was approved.`));
    if (decided.project) realtime.toTopic(companyId, projectTopic(decided.project.id)).emit("project:updated", decided.project);
    res.json(decided.expense);
  });
  return router;
}
