/** What the engine writes to its log; `console` fits. */
export interface Logger {
  /** Something went wrong but the engine carries on (a store call failed, a handler threw). */
  warn(message: string, context?: Record<string, unknown>): void;
  /** Something went wrong that an operator should look at. */
  error(message: string, context?: Record<string, unknown>): void;
}

/** A logger that drops everything. */
export const silentLogger: Logger = { warn() {}, error() {} };

/** The default logger: `console`, prefixed. */
export const consoleLogger: Logger = {
  warn: (message, context) => console.warn(`[truss] ${message}`, context ?? ""),
  error: (message, context) => console.error(`[truss] ${message}`, context ?? ""),
};
