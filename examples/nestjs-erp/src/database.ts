import { Inject, Injectable, type OnApplicationShutdown } from "@nestjs/common";
import { createRepositories, type Repositories } from "@truss/example-construction-erp/data";
import { openDatabase, seedDatabase, type Db } from "@truss/example-construction-erp/db";
import { seedData } from "@truss/example-construction-erp/seed";
import { ERP_CONFIG, type ErpConfig } from "./config.js";

/** The construction ERP's SQLite database and its company-scoped queries, seeded with the demo data. */
@Injectable()
export class ErpDatabase implements OnApplicationShutdown {
  private readonly db: Db;
  /** Every table's queries. */
  readonly repos: Repositories;

  constructor(@Inject(ERP_CONFIG) config: ErpConfig) {
    this.db = openDatabase(config.databasePath ?? ":memory:");
    seedDatabase(this.db, seedData());
    this.repos = createRepositories(this.db);
  }

  /** Runs after the engine closed (`onModuleDestroy`), so no route is mid-query. */
  onApplicationShutdown(): void {
    this.db.close();
  }
}
