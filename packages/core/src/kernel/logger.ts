import { messageOf } from "./errors.js";

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

/**
 * The application's logger as the engine calls it: a logger that throws (a
 * closed destination, a serializer that chokes, a method missing) must not
 * turn a failure it was asked to log into another one, least of all into a
 * rejection nobody handles in a timer, which ends the process. What it was
 * asked to log is dropped; the first time, Node.js is warned
 * (`process.emitWarning`, type `TrussLoggerWarning`) with what it threw.
 */
export function guardedLogger(logger: Logger): Logger {
  if (logger === silentLogger || logger === consoleLogger) return logger;
  let warned = false;
  const guarded = (level: keyof Logger) => (message: string, context?: Record<string, unknown>) => {
    try {
      logger[level](message, context);
    } catch (error) {
      if (warned) return;
      warned = true;
      const reason = messageOf(error);
      process.emitWarning(`The logger given to Truss threw (${reason}) while logging "${message}"; what it is asked to log is dropped while it throws.`, "TrussLoggerWarning");
    }
  };
  return { warn: guarded("warn"), error: guarded("error") };
}
