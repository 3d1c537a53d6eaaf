import { BadRequestException, Body, Controller, Get, Inject, NotFoundException, Param, Patch, UseGuards } from "@nestjs/common";
import type { Principal } from "@truss/core";
import type { ErpCatalog, Project } from "@truss/example-construction-erp/catalog";
import { projectTopic } from "@truss/example-construction-erp/topics";
import { RealtimeService } from "@truss/nestjs";
import { throwUnlessAllowed } from "./access.js";
import { CurrentPrincipal, TokenGuard } from "./auth.js";
import { ErpDatabase } from "./database.js";

const about = (id: string) => ({ project: id, resource: `project ${id}` });

/**
 * Projects: list and change. A subcontractor sees only the projects they are
 * assigned to; a change goes to the project's topic as `project:updated`, so
 * it reaches only the people the policy lets subscribe to it.
 */
@Controller("api/projects")
@UseGuards(TokenGuard)
export class ProjectsController {
  constructor(
    @Inject(ErpDatabase) private readonly database: ErpDatabase,
    @Inject(RealtimeService) private readonly realtime: RealtimeService<ErpCatalog>,
  ) {}

  @Get()
  list(@CurrentPrincipal() principal: Principal): Project[] {
    const { repos, access } = this.database;
    return access.visible(principal, repos.projects.list(principal.companyId), (project) => ({ action: "project:read", ...about(project.id) }));
  }

  @Patch(":id")
  update(@CurrentPrincipal() principal: Principal, @Param("id") id: string, @Body() body: { budget?: unknown; name?: unknown }): Project {
    const { repos, access } = this.database;
    if (!repos.projects.get(principal.companyId, id)) throw new NotFoundException(`No project ${id} in your company.`);
    throwUnlessAllowed(access.decide(principal, { action: "project:edit", ...about(id) }));
    const { budget, name } = body ?? {};
    if ((budget !== undefined && (typeof budget !== "number" || budget < 0)) || (name !== undefined && typeof name !== "string")) {
      throw new BadRequestException("budget must be a non-negative number and name a string.");
    }
    const changes = { ...(budget === undefined ? {} : { budget }), ...(name === undefined ? {} : { name }) };
    const project = repos.projects.update(principal.companyId, id, changes);
    if (!project) throw new NotFoundException(`No project ${id} in your company.`);
    this.realtime.toTopic(principal.companyId, projectTopic(id)).emit("project:updated", project);
    return project;
  }
}
