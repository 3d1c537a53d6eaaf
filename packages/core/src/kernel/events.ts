import type { StandardSchemaV1 } from "@standard-schema/spec";
import type { ErrorPayload } from "./errors.js";

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
