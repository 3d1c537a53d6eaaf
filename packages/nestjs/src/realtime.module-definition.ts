import { ConfigurableModuleBuilder, type ConfigurableModuleAsyncOptions } from "@nestjs/common";
import { DEFAULT_HEALTH_PATH, type RealtimeEngineSource, type RealtimeHttpOptions } from "@truss/core/http";
import { createRealtimeHealthController } from "./realtime-health.controller.js";

/**
 * The engine part of `RealtimeModule`'s options (what a `forRootAsync`
 * factory returns): the engine options of `@truss/core` — auth, stores,
 * Socket.IO adapter, limits — or a prebuilt `{ engine }`.
 */
export type RealtimeModuleOptions = RealtimeEngineSource;

/**
 * Options fixed where the module is imported, also with `forRootAsync`:
 * Nest maps routes before any factory runs, so the paths cannot come from one.
 */
export interface RealtimeModuleExtras extends RealtimeHttpOptions {
  /** Registers the module globally, so every module can inject `RealtimeService`. Default `true`. */
  isGlobal?: boolean;
}

/** `RealtimeModule.forRoot` options. */
export type RealtimeModuleForRootOptions = RealtimeModuleOptions & RealtimeModuleExtras;

/** `RealtimeModule.forRootAsync` options: Nest's `imports`/`inject`/`useFactory` (or `useClass`), plus the extras. */
export interface RealtimeModuleAsyncOptions extends ConfigurableModuleAsyncOptions<RealtimeModuleOptions>, RealtimeModuleExtras {}

const definition = new ConfigurableModuleBuilder<RealtimeModuleOptions>({ moduleName: "Realtime" })
  .setClassMethodName("forRoot")
  .setExtras<RealtimeModuleExtras>({ isGlobal: true, healthPath: DEFAULT_HEALTH_PATH, metricsPath: false }, (module, extras) => {
    const controller = createRealtimeHealthController(extras);
    return {
      ...module,
      global: extras.isGlobal ?? true,
      controllers: [...(module.controllers ?? []), ...(controller ? [controller] : [])],
    };
  })
  .build();

/** The `forRoot`/`forRootAsync` base class that `RealtimeModule` extends. */
export const RealtimeConfigurableModule = definition.ConfigurableModuleClass;

/** Injection token of the resolved {@link RealtimeModuleOptions}. */
export const REALTIME_MODULE_OPTIONS = definition.MODULE_OPTIONS_TOKEN;
