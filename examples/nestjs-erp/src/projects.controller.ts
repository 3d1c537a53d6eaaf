import { BadRequestException, Body, Controller, Get, Inject, NotFoundException, Param, Patch, UseGuards } from "@nestjs/common";
import type { Principal } from "@truss/core";
import type { ErpCatalog, Project } from "@truss/example-construction-erp/catalog";
import { RealtimeService } from "@truss/nestjs";
import { CurrentPrincipal, TokenGuard } from "./auth.js";
import { ErpDatabase } from "./database.js";

/** Projects: list and change; each change goes to the company as `project:updated`. */
@Controller("api/projects")
@UseGuards(TokenGuard)
export class ProjectsController {
  constructor(
    @Inject(ErpDatabase) private readonly database: ErpDatabase,
    @Inject(RealtimeService) private readonly realtime: RealtimeService<ErpCatalog>,
  ) {}

  @Get()
  list(@CurrentPrincipal() principal: Principal): Project[] {
    return this.database.repos.projects.list(principal.companyId);
  }

  @Patch(":id")
  update(@CurrentPrincipal() principal: Principal, @Param("id") id: string, @Body() body: { budget?: unknown; name?: unknown }): Project {
    const { budget, name } = body ?? {};
    if ((budget !== undefined && (typeof budget !== "number" || budget < 0)) || (name !== undefined && typeof name !== "string")) {
      throw new BadRequestException("budget must be a non-negative number and name a string.");
    }
    const changes = { ...(budget === undefined ? {} : { budget }), ...(name === undefined ? {} : { name }) };
    const project = this.database.repos.projects.update(principal.companyId, id, changes);
    if (!project) throw new NotFoundException(`No project ${id} in your company.`);
    this.realtime.toCompany(principal.companyId).emit("project:updated", project);
    return project;
  }
}
