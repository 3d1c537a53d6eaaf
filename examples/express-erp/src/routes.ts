import { isManager } from "@truss/example-construction-erp/auth";
import type { Repositories } from "@truss/example-construction-erp/data";
import { notification, sendToUser } from "@truss/example-construction-erp/notifications";
import type { ErpCatalog } from "@truss/example-construction-erp/catalog";
import type { RealtimeEngine } from "@truss/core";
import { Router, type Request } from "express";

/** `req.realtime` is set by `realtimeHandler`; this view of it carries the catalog's types. */
const realtimeOf = (req: Request) => req.realtime as RealtimeEngine<ErpCatalog>;

const notFound = (what: string, id: string) => ({ error: { code: "NOT_FOUND", message: `No ${what} ${id} in your company.` } });

/** Projects: list and change; each change goes to the company as `project:updated`. */
export function projectRoutes(repos: Repositories): Router {
  const router = Router();
  router.get("/projects", (req, res) => {
    res.json(repos.projects.list(req.principal.companyId));
  });
  router.patch("/projects/:id", (req, res) => {
    const { companyId } = req.principal;
    const { budget, status, name } = (req.body ?? {}) as Record<string, unknown>;
    if ((budget !== undefined && (typeof budget !== "number" || budget < 0)) || (name !== undefined && typeof name !== "string")) {
      res.status(400).json({ error: { code: "INVALID_PAYLOAD", message: "budget must be a non-negative number and name a string." } });
      return;
    }
    const changes = Object.fromEntries(Object.entries({ budget, status, name }).filter(([, value]) => value !== undefined));
    const project = repos.projects.update(companyId, req.params.id, changes);
    if (!project) {
      res.status(404).json(notFound("project", req.params.id));
      return;
    }
    realtimeOf(req).toCompany(companyId).emit("project:updated", project);
    res.json(project);
  });
  return router;
}

/**
 * Expense approval: the submitter gets `expense:approved` and a notification
 * through their inbox (durable, so an offline phone gets it on reconnect),
 * and the company sees the project's new spend.
 */
export function expenseRoutes(repos: Repositories): Router {
  const router = Router();
  router.get("/expenses", (req, res) => {
    res.json(repos.expenses.list(req.principal.companyId));
  });
  router.post("/expenses/:id/approve", async (req, res) => {
    const { companyId, userId } = req.principal;
    if (!isManager(req.principal)) {
      res.status(403).json({ error: { code: "FORBIDDEN", message: "Only managers may approve expenses." } });
      return;
    }
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
    if (decided.project) realtime.toCompany(companyId).emit("project:updated", decided.project);
    res.json(decided.expense);
  });
  return router;
}
