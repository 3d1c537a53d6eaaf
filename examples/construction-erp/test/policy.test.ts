import { describe, expect, test } from "vitest";
import { decide, PERMISSIONS, type AccessRequest, type Action, type Actor } from "../src/policy.js";

const manager: Actor = { userId: "u-alice", role: "manager", assignedProjects: new Set() };
const member: Actor = { userId: "u-ben", role: "member", assignedProjects: new Set() };
const subcontractor: Actor = { userId: "u-sam", role: "subcontractor", assignedProjects: new Set(["p-riverside"]) };

/** `true`, or the refusal's code, for a compact table. */
const outcome = (actor: Actor, request: AccessRequest) => {
  const decision = decide(actor, request);
  return decision === true ? true : decision.code;
};

describe("the policy, as a pure function", () => {
  test("managers may do everything in their company; members everything but the managers' decisions", () => {
    const managersOnly: Action[] = ["project:delete", "expense:decide", "invoice:pay", "document:rollback", "user:remove", "notification-log:read"];
    for (const action of Object.keys(PERMISSIONS) as Action[]) {
      expect({ action, manager: outcome(manager, { action }) }).toEqual({ action, manager: true });
      expect({ action, member: outcome(member, { action }) }).toEqual({ action, member: managersOnly.includes(action) ? "FORBIDDEN" : true });
      expect(outcome(member, { action, project: "p-harbor" })).toBe(managersOnly.includes(action) ? "FORBIDDEN" : true);
    }
  });

  test("a subcontractor reads and writes only on their projects; anything else is NOT_FOUND, like another company's row", () => {
    const onProject = (action: Action, project: string | null) => outcome(subcontractor, { action, project });
    expect(onProject("project:read", "p-riverside")).toBe(true);
    expect(onProject("document:read", "p-riverside")).toBe(true);
    expect(onProject("document:write", "p-riverside")).toBe(true);
    expect(onProject("expense:submit", "p-riverside")).toBe(true);
    expect(onProject("project:read", "p-harbor")).toBe("NOT_FOUND");
    expect(onProject("document:read", "p-harbor")).toBe("NOT_FOUND");
    // A company-wide document (of no project) is not theirs to know about either.
    expect(onProject("document:read", null)).toBe("NOT_FOUND");
    // On their own project, staff actions are refused as such.
    expect(onProject("project:edit", "p-riverside")).toBe("FORBIDDEN");
    expect(onProject("document:rollback", "p-riverside")).toBe("FORBIDDEN");
    expect(onProject("task:manage", "p-riverside")).toBe("FORBIDDEN");
  });

  test("a subcontractor sees only the rows they own, and nothing across the company", () => {
    expect(outcome(subcontractor, { action: "expense:read", project: "p-riverside", owner: "u-sam" })).toBe(true);
    expect(outcome(subcontractor, { action: "expense:read", project: "p-riverside", owner: "u-ben" })).toBe("NOT_FOUND");
    for (const action of ["project:read", "inventory:read", "invoice:read", "expense:decide"] as const) {
      expect({ action, answer: outcome(subcontractor, { action }) }).toEqual({ action, answer: "FORBIDDEN" });
    }
  });

  test("refusals say why: who may, or that nothing is there", () => {
    expect(decide(member, { action: "document:rollback", project: "p-riverside" })).toEqual({ code: "FORBIDDEN", message: "Only managers may roll back documents." });
    expect(decide(subcontractor, { action: "project:edit", project: "p-riverside" })).toEqual({ code: "FORBIDDEN", message: "Only managers and members may edit projects." });
    expect(decide(subcontractor, { action: "project:read", project: "p-harbor", resource: "project p-harbor" })).toEqual({
      code: "NOT_FOUND",
      message: "No project p-harbor in your company.",
    });
  });
});
