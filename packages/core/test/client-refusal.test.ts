import { expect, test } from "vitest";
import { clientRefusal, isTrussError, TrussError } from "../src/kernel/errors.js";

test("a client refusal is a TrussError with its code and message, without a stack trace, and leaves the stack trace limit as it was", () => {
  const before = Error.stackTraceLimit;
  const refusal = clientRefusal("FORBIDDEN", "Subscribing to \"project:p-9\" was refused.");
  expect(refusal).toBeInstanceOf(Error);
  expect(isTrussError(refusal)).toBe(true);
  expect(refusal.toJSON()).toEqual({ code: "FORBIDDEN", message: "Subscribing to \"project:p-9\" was refused." });
  expect(refusal.stack).not.toMatch(/\n\s+at /);
  expect(Error.stackTraceLimit).toBe(before);
  // Errors made elsewhere keep theirs.
  expect(new TrussError("FORBIDDEN", "x").stack).toMatch(/\n\s+at /);
});
