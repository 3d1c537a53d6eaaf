import { Controller, Get, HttpCode, Inject, Param, Post, UseGuards } from "@nestjs/common";
import type { Principal } from "@truss/core";
import type { Expense } from "@truss/example-construction-erp/catalog";
import { CurrentPrincipal, TokenGuard } from "./auth.js";
import { ExpensesService } from "./expenses.service.js";

/** Expenses and their approval. */
@Controller("api/expenses")
@UseGuards(TokenGuard)
export class ExpensesController {
  constructor(@Inject(ExpensesService) private readonly expenses: ExpensesService) {}

  @Get()
  list(@CurrentPrincipal() principal: Principal): Expense[] {
    return this.expenses.list(principal);
  }

  @Post(":id/approve")
  @HttpCode(200)
  approve(@CurrentPrincipal() principal: Principal, @Param("id") id: string): Promise<Expense> {
    return this.expenses.approve(principal, id);
  }
}
