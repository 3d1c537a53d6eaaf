/**
 * Injection token of the `RealtimeEngine` that `RealtimeModule` provides, for
 * code that wants the engine itself rather than `RealtimeService`:
 * `constructor(@Inject(REALTIME_ENGINE) engine: RealtimeEngine)`.
 */
export const REALTIME_ENGINE = Symbol.for("@truss/nestjs:RealtimeEngine");
