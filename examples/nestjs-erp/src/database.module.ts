import { Module, type DynamicModule } from "@nestjs/common";
import { ERP_CONFIG, type ErpConfig } from "./config.js";
import { ErpDatabase } from "./database.js";

/**
 * Provides the configuration and {@link ErpDatabase}, so the app's
 * controllers and `RealtimeModule.forRootAsync`'s factory inject the same
 * database and policy.
 */
@Module({})
export class DatabaseModule {
  /** The database of the app configured with `config`. */
  static forRoot(config: ErpConfig): DynamicModule {
    return {
      module: DatabaseModule,
      providers: [{ provide: ERP_CONFIG, useValue: config }, ErpDatabase],
      exports: [ERP_CONFIG, ErpDatabase],
    };
  }
}
