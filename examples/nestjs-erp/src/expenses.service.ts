import { ConflictException, ForbiddenException, Inject, Injectable, Logger, NotFoundException } from "@nestjs/common";
import type { Principal } from "@truss/core";
import { isManager } from "@truss/example-construction-erp/auth";
import type { ErpCatalog, Expense } from "@truss/example-construction-erp/catalog";
import { notification, sendToUser } from "@truss/example-construction-erp/notifications";
import { RealtimeService } from "@truss/nestjs";
import { ErpDatabase } from "./database.js";

/** Expense approval, where the database change and its events belong together. */
@Injectable()
export class ExpensesService {
  private readonly logger = new Logger(ExpensesService.name);

  constructor(
    @Inject(ErpDatabase) private readonly database: ErpDatabase,
    @Inject(RealtimeService) private readonly realtime: RealtimeService<ErpCatalog>,
  ) {}

  /** The company's expenses, newest first. */
  list(companyId: string): Expense[] {
    return this.database.repos.expenses.list(companyId);
  }

  /**
   * Approves a pending expense: the submitter gets `expense:approved` and a
   * notification through their inbox (so an offline phone gets them on
   * reconnect), and the company sees the project's new spend.
   */
  async approve(principal: Principal, id: string): Promise<Expense> {
    if (!isManager(principal)) throw new ForbiddenException("Only managers may approve expenses.");
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
    if (project) this.realtime.toCompany(principal.companyId).emit("project:updated", project);
    return expense;
  }
}
