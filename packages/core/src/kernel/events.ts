import type { StandardSchemaV1 } from "@standard-schema/spec";
import { RESERVED_EVENTS } from "@truss/protocol";
import type { ErrorPayload } from "./errors.js";
import { isWellFormedText } from "./payload.js";

export { defineEvents } from "@truss/protocol";
export type { ClientEventData, ClientEventName, EventCatalog, SchemaMap, ServerEventData, ServerEventName } from "@truss/protocol";

/** The result of {@link validateWithSchema}. */
export type ValidationResult = { ok: true; value: unknown } | { ok: false; error: ErrorPayload };

/**
 * Validates `value` against a Standard Schema, turning its issues into one
 * `INVALID_PAYLOAD` message that names each failing path.
 */
export async function validateWithSchema(
  event: string,
  schema: StandardSchemaV1,
  value: unknown,
): Promise<ValidationResult> {
  let result = schema["~standard"].validate(value);
  if (result instanceof Promise) result = await result;
  if (!result.issues) return { ok: true, value: result.value };
  const details = result.issues
    .slice(0, 5)
    .map((issue) => {
      const path = issue.path?.map((p) => (typeof p === "object" ? String(p.key) : String(p))).join(".");
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join("; ");
  return { ok: false, error: { code: "INVALID_PAYLOAD", message: `"${event}" payload is invalid: ${details}` } };
}

/** The longest event name the application may emit or handle, in UTF-16 units (a topic name's cap). */
export const MAX_EVENT_NAME_LENGTH = 200;

/**
 * Checks an application event name, for every way one reaches the engine:
 * its emitters, `handle`, a handler's `broadcast`, and an outbox row at the
 * application's call. A non-empty string of well-formed Unicode of at most
 * {@link MAX_EVENT_NAME_LENGTH} characters, not a Truss protocol event.
 *
 * @param call Named first in the error, when given (`outbox toUser(...).emit`).
 * @throws TypeError saying which rule the name breaks.
 */
export function assertApplicationEvent(event: unknown, call?: string): asserts event is string {
  const refuse = (reason: string) => new TypeError(call === undefined ? reason : `${call}: ${reason}`);
  if (typeof event !== "string" || event.length === 0) throw refuse(`The event name must be a non-empty string; got ${typeof event === "string" ? "an empty string" : typeof event}.`);
  // Stored with every message and broadcast, outside the data's byte cap; and a lone surrogate would come back
  // from Redis or PostgreSQL as U+FFFD, a name no listener has.
  if (event.length > MAX_EVENT_NAME_LENGTH || !isWellFormedText(event)) {
    throw refuse(`An event name must be well-formed Unicode of at most ${MAX_EVENT_NAME_LENGTH} characters; got ${event.length} characters starting "${event.slice(0, 40)}".`);
  }
  if (RESERVED_EVENTS.has(event)) throw refuse(`"${event}" is a Truss protocol event and cannot be emitted by the application.`);
}
