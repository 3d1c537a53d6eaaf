import { Module, type DynamicModule } from "@nestjs/common";
import { jwtOptions } from "@truss/example-construction-erp/auth";
import { catalog } from "@truss/example-construction-erp/catalog";
import { TOPIC_PATTERNS } from "@truss/example-construction-erp/topics";
import { RealtimeModule } from "@truss/nestjs";
import { LoginController, TokenGuard } from "./auth.js";
import type { ErpConfig } from "./config.js";
import { DatabaseModule } from "./database.module.js";
import { ErpDatabase } from "./database.js";
import { ExpensesController } from "./expenses.controller.js";
import { ExpensesService } from "./expenses.service.js";
import { ProjectsController } from "./projects.controller.js";

/** The construction ERP's projects and expense approvals as a Nest module. */
@Module({})
export class AppModule {
  /** The app configured with a secret (and optionally a database file). */
  static forRoot(config: ErpConfig): DynamicModule {
    const database = DatabaseModule.forRoot(config);
    return {
      module: AppModule,
      imports: [
        database,
        // Serves Truss on the app's HTTP server, with GET /health/websocket. The
        // engine asks the demo's policy, bound to the database the routes use.
        RealtimeModule.forRootAsync({
          imports: [database],
          inject: [ErpDatabase],
          useFactory: ({ access, documents }: ErpDatabase) => ({
            auth: jwtOptions(config.jwtSecret),
            authorize: access.authorize,
            topics: { patterns: TOPIC_PATTERNS },
            events: catalog,
            documents,
            ...(config.logger === false ? { logger: false as const } : {}),
          }),
        }),
      ],
      controllers: [LoginController, ProjectsController, ExpensesController],
      providers: [TokenGuard, ExpensesService],
    };
  }
}
