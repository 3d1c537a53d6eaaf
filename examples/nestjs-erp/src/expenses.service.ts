import { ConflictException, Inject, Injectable, Logger, NotFoundException } from "@nestjs/common";
import type { Principal } from "@truss/core";
import type { ErpCatalog, Expense } from "@truss/example-construction-erp/catalog";
import { notification, sendToUser } from "@truss/example-construction-erp/notifications";
import { projectTopic } from "@truss/example-construction-erp/topics";
import { RealtimeService } from "@truss/nestjs";
import { throwUnlessAllowed } from "./access.js";
import { ErpDatabase } from "./database.js";

/** Expense approval, where the database change and its events belong together. */
@Injectable()
export class ExpensesService {
  private readonly logger = new Logger(ExpensesService.name);

  constructor(
    @Inject(ErpDatabase) private readonly database: ErpDatabase,
    @Inject(RealtimeService) private readonly realtime: RealtimeService<ErpCatalog>,
  ) {}

  /** The company's expenses the user may see, newest first: a subcontractor's own, on their projects. */
  list(principal: Principal): Expense[] {
    const { repos, access } = this.database;
    return access.visible(principal, repos.expenses.list(principal.companyId), (expense) => ({
      action: "expense:read",
      project: expense.projectId,
      owner: expense.submittedBy,
    }));
  }

  /**
   * Approves a pending expense: the submitter gets `expense:approved` and a
   * notification through their inbox (so an offline phone gets them on
   * reconnect), and the project's topic sees its new spend.
   */
  async approve(principal: Principal, id: string): Promise<Expense> {
    throwUnlessAllowed(this.database.access.decide(principal, { action: "expense:decide" }));
    const { expenses } = this.database.repos;
    const existing = expenses.get(principal.companyId, id);
    if (!existing) throw new NotFoundException(`No expense ${id} in your company.`);
    const decided = expenses.decide(principal.companyId, id, { status: "approved", decidedBy: principal.userId, reason: null });
    if (!decided) throw new ConflictException(`Expense ${id} was already ${existing.status}.`);
    const { expense, project } = decided;
    const log = { warn: (context: object, message: string) => this.logger.warn(`${message} ${JSON.stringify(context)}`) };
    const submitter = { companyId: principal.companyId, userId: expense.submittedBy };
    await sendToUser(this.realtime.engine, log, submitter, "expense:approved", expense);
    await sendToUser(this.realtime.engine, log, submitter, "notification:new", notification("expense", "Expense approved", `"${expense.description}" was approved.`));
    if (project) this.realtime.toTopic(principal.companyId, projectTopic(project.id)).emit("project:updated", project);
    return expense;
  }
}
