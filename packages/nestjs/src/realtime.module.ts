import { Module, type DynamicModule } from "@nestjs/common";
import { engineFrom } from "@truss/core/http";
import {
  REALTIME_MODULE_OPTIONS,
  RealtimeConfigurableModule,
  type RealtimeModuleAsyncOptions,
  type RealtimeModuleForRootOptions,
  type RealtimeModuleOptions,
} from "./realtime.module-definition.js";
import { RealtimeService } from "./realtime.service.js";
import { REALTIME_ENGINE } from "./tokens.js";

/**
 * Truss in a NestJS app: provides the engine and `RealtimeService`, serves
 * the health route, and closes the engine on `app.close()`. Import it once,
 * in the root module; it is global unless `isGlobal: false`.
 */
@Module({
  providers: [
    { provide: REALTIME_ENGINE, useFactory: (options: RealtimeModuleOptions) => engineFrom(options), inject: [REALTIME_MODULE_OPTIONS] },
    RealtimeService,
  ],
  exports: [REALTIME_ENGINE, RealtimeService],
})
export class RealtimeModule extends RealtimeConfigurableModule {
  /**
   * Configures Truss with static options.
   *
   * @example
   * ```ts
   * RealtimeModule.forRoot({ auth: { secret: process.env.JWT_SECRET!, algorithms: ["HS256"] } })
   * ```
   */
  static override forRoot(options: RealtimeModuleForRootOptions): DynamicModule {
    return super.forRoot(options);
  }

  /**
   * Configures Truss from other providers (configuration, a Redis client…).
   *
   * @example
   * ```ts
   * RealtimeModule.forRootAsync({
   *   imports: [ConfigModule],
   *   inject: [ConfigService],
   *   useFactory: (config: ConfigService) => ({ auth: { secret: config.get("JWT_SECRET"), algorithms: ["HS256"] } }),
   * })
   * ```
   */
  static override forRootAsync(options: RealtimeModuleAsyncOptions): DynamicModule {
    return super.forRootAsync(options);
  }
}
