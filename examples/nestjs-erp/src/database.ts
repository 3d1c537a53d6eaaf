import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from "@nestjs/common";
import { createAccess, type ErpAccess } from "@truss/example-construction-erp/access";
import { createRepositories, type Repositories } from "@truss/example-construction-erp/data";
import { openDatabase, seedDatabase, type Db } from "@truss/example-construction-erp/db";
import { seedData } from "@truss/example-construction-erp/seed";
import { sqliteDocumentStore, type SqliteDocumentStore } from "@truss/example-construction-erp/sqlite-document-store";
import { ERP_CONFIG, type ErpConfig } from "./config.js";

/**
 * The construction ERP's SQLite database, seeded with the demo data: its
 * company-scoped queries, the site reports' document store, and the demo's
 * policy bound to it, which the routes and the engine both ask.
 */
@Injectable()
export class ErpDatabase implements OnModuleInit, OnApplicationShutdown {
  private readonly db: Db;
  private readonly seed = seedData();
  /** Every table's queries. */
  readonly repos: Repositories;
  /** Who may do what: the REST routes ask it, and it is the engine's `authorize`. */
  readonly access: ErpAccess;
  /** The site reports, versioned in the same database. */
  readonly documents: SqliteDocumentStore;

  constructor(@Inject(ERP_CONFIG) config: ErpConfig) {
    this.db = openDatabase(config.databasePath ?? ":memory:");
    seedDatabase(this.db, this.seed);
    this.repos = createRepositories(this.db);
    this.access = createAccess(this.repos);
    this.documents = sqliteDocumentStore(this.db);
  }

  /** Writes version 1 of each site report; a database that has them already keeps its own. */
  async onModuleInit(): Promise<void> {
    for (const { companyId, type, id, data } of this.seed.documents) await this.documents.compareAndSet({ companyId, type, id }, 0, data, null);
  }

  /** Runs after the engine closed (`onModuleDestroy`), so no route is mid-query. */
  onApplicationShutdown(): void {
    this.db.close();
  }
}
