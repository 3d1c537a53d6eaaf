import { createRequire } from "node:module";
import { isTrussError } from "./errors.js";

/**
 * Optional OpenTelemetry spans. `@opentelemetry/api` is an optional peer
 * dependency: when the application has it, the engine's spans go to whatever
 * tracer provider the application registered (none registered: the API's
 * no-op); when it is not installed, every span here is a shared no-op and
 * nothing is loaded. The shapes below are the few members of the API used,
 * so the published types do not depend on the optional package.
 */

type AttributeValue = string | number | boolean;

interface OtelSpan {
  isRecording?(): boolean;
  setAttribute(key: string, value: AttributeValue): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  end(): void;
}

interface OtelApi {
  trace: {
    getTracer(name: string): { startSpan(name: string, options?: { kind?: number; attributes?: Record<string, AttributeValue> }): OtelSpan };
    /** The global provider: the API's proxy, whose `getDelegateTracer` is `undefined` until an SDK is registered. */
    getTracerProvider(): { getDelegateTracer?(name: string): unknown };
  };
}

/** `SpanStatusCode.ERROR` and `SpanKind` values of the OpenTelemetry API (stable numbers). */
const STATUS_ERROR = 2;
export const SPAN_KIND = { internal: 0, server: 1 } as const;

/** The instrumentation scope name of the engine's spans. */
export const TRACER_NAME = "@truss/core";

/** One span of the engine; a no-op without OpenTelemetry. */
export interface TrussSpan {
  /** Sets an attribute. */
  set(key: string, value: AttributeValue): void;
  /** Marks the span failed: `truss.error.code` and an error status, from a TrussError's (or an error payload's) code, else `INTERNAL_ERROR`. */
  fail(error: unknown): void;
  /** Ends the span. */
  end(): void;
}

const NOOP_SPAN: TrussSpan = { set() {}, fail() {}, end() {} };

let api: OtelApi | null | undefined;

/** Loads `@opentelemetry/api` once, synchronously (`require` in the CJS build, `createRequire` in the ESM one); `null` when it is not installed. */
function otel(): OtelApi | null {
  if (api !== undefined) return api;
  try {
    // `import.meta.url` is empty in the CJS build, where `require` is the module's own.
    const base = import.meta.url as string | undefined;
    const load = base ? createRequire(base) : require;
    api = load("@opentelemetry/api") as OtelApi;
  } catch {
    api = null;
  }
  return api;
}

/** Starts a span named `name` in the active context (so a `toUser` inside a traced request is its child). */
function startSpan(name: string, kind: number, attributes: Record<string, AttributeValue>): TrussSpan {
  const found = otel();
  if (!found) return NOOP_SPAN;
  // No SDK registered: the API would build a tracer and a span that record nothing, on every call.
  const provider = found.trace.getTracerProvider();
  if (typeof provider.getDelegateTracer === "function" && provider.getDelegateTracer(TRACER_NAME) === undefined) return NOOP_SPAN;
  const span = found.trace.getTracer(TRACER_NAME).startSpan(name, { kind, attributes });
  // No SDK registered (or it samples this one out): nothing will read the span, so nothing more is built for it.
  if (span.isRecording?.() === false) return NOOP_SPAN;
  return {
    set: (key, value) => void span.setAttribute(key, value),
    fail: (error) => {
      const code = errorCode(error);
      span.setAttribute("truss.error.code", code);
      span.setStatus({ code: STATUS_ERROR, message: code });
    },
    end: () => span.end(),
  };
}

/**
 * Runs `work` inside a span named `name`: a rejection marks the span failed
 * ({@link TrussSpan.fail}, with `failure(error)` when the error carries its
 * code elsewhere) and is rethrown; the span ends either way.
 */
export function traced<T>(
  name: string,
  kind: number,
  attributes: Record<string, AttributeValue>,
  work: (span: TrussSpan) => Promise<T>,
  failure: (error: unknown) => unknown = (error) => error,
): Promise<T> {
  const span = startSpan(name, kind, attributes);
  // Nothing records the span: the work runs as it is, without an async frame around it for every call.
  if (span === NOOP_SPAN) {
    try {
      return work(span);
    } catch (error) {
      return Promise.reject(error);
    }
  }
  return recorded(span, work, failure);
}

/** Runs `work` in a recorded span: marks it failed on a rejection (rethrown) and ends it either way. */
async function recorded<T>(span: TrussSpan, work: (span: TrussSpan) => Promise<T>, failure: (error: unknown) => unknown): Promise<T> {
  try {
    return await work(span);
  } catch (error) {
    span.fail(failure(error));
    throw error;
  } finally {
    span.end();
  }
}

/** The code of a TrussError or of an error payload (`{ code, message }`); a TypeError (a bad argument) is `INVALID_ARGUMENT`, anything else `INTERNAL_ERROR`. */
function errorCode(error: unknown): string {
  if (isTrussError(error)) return error.code;
  if (typeof error === "object" && error !== null && !(error instanceof Error) && typeof (error as { code?: unknown }).code === "string") return (error as { code: string }).code;
  return error instanceof TypeError ? "INVALID_ARGUMENT" : "INTERNAL_ERROR";
}
