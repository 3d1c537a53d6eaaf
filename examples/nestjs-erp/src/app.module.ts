import { Module, type DynamicModule } from "@nestjs/common";
import { jwtOptions } from "@truss/example-construction-erp/auth";
import { catalog } from "@truss/example-construction-erp/catalog";
import { RealtimeModule } from "@truss/nestjs";
import { LoginController, TokenGuard } from "./auth.js";
import { ERP_CONFIG, type ErpConfig } from "./config.js";
import { ErpDatabase } from "./database.js";
import { ExpensesController } from "./expenses.controller.js";
import { ExpensesService } from "./expenses.service.js";
import { ProjectsController } from "./projects.controller.js";
import { TypingRelay } from "./typing-relay.js";

/** The construction ERP's projects and expense approvals as a Nest module. */
@Module({})
export class AppModule {
  /** The app configured with a secret (and optionally a database file). */
  static forRoot(config: ErpConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        // Serves Truss on the app's HTTP server, with GET /health/websocket.
        RealtimeModule.forRoot({ auth: jwtOptions(config.jwtSecret), events: catalog, ...(config.logger === false ? { logger: false } : {}) }),
      ],
      controllers: [LoginController, ProjectsController, ExpensesController],
      providers: [{ provide: ERP_CONFIG, useValue: config }, ErpDatabase, TokenGuard, ExpensesService, TypingRelay],
    };
  }
}
