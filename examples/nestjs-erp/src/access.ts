import { ForbiddenException, NotFoundException } from "@nestjs/common";
import type { Decision } from "@truss/example-construction-erp/policy";

/**
 * Throws the policy's refusal as Nest's exception: `NotFoundException` for
 * `NOT_FOUND` (the resource is not the user's to know of), else
 * `ForbiddenException`, with the policy's message.
 */
export function throwUnlessAllowed(decision: Decision): void {
  if (decision === true) return;
  throw decision.code === "NOT_FOUND" ? new NotFoundException(decision.message) : new ForbiddenException(decision.message);
}
