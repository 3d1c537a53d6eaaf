/**
 * Who may do what in the ERP, as one pure function of facts: the user's role
 * and project assignments, and the project a resource belongs to. The REST
 * routes and the Truss engine's `authorize` option both ask {@link decide}
 * (through `access.ts`, which looks the facts up), so the two doors into the
 * same data cannot disagree.
 *
 * @module
 */
import type { Role } from "./seed.js";

/** Everything the ERP checks, by name. */
export type Action = keyof typeof PERMISSIONS;

/** Who may perform an action, and how a refusal describes it. */
export interface Permission {
  /** The roles allowed; a subcontractor only on the projects they are assigned to. */
  roles: readonly Role[];
  /** The action as a refusal names it: "Only managers may {does}." */
  does: string;
}

const EVERYONE: readonly Role[] = ["manager", "member", "subcontractor"];
const STAFF: readonly Role[] = ["manager", "member"];
const MANAGERS: readonly Role[] = ["manager"];

/**
 * The roles table. Managers may do everything in their company; members
 * everything but the decisions below marked managers-only; subcontractors
 * read and write only what belongs to a project they are assigned to.
 */
export const PERMISSIONS = {
  "project:read": { roles: EVERYONE, does: "see projects" },
  "project:create": { roles: STAFF, does: "create projects" },
  "project:edit": { roles: STAFF, does: "edit projects" },
  "project:delete": { roles: MANAGERS, does: "delete projects" },
  "task:read": { roles: EVERYONE, does: "see tasks" },
  "task:manage": { roles: STAFF, does: "create and assign tasks" },
  "expense:read": { roles: EVERYONE, does: "see expenses" },
  "expense:submit": { roles: EVERYONE, does: "submit expenses" },
  "expense:decide": { roles: MANAGERS, does: "approve and reject expenses" },
  "invoice:read": { roles: STAFF, does: "see invoices" },
  "invoice:pay": { roles: MANAGERS, does: "pay invoices" },
  "inventory:read": { roles: STAFF, does: "see stock" },
  "inventory:write": { roles: STAFF, does: "change stock" },
  "document:read": { roles: EVERYONE, does: "read documents" },
  "document:write": { roles: EVERYONE, does: "edit documents" },
  "document:rollback": { roles: MANAGERS, does: "roll back documents" },
  "user:remove": { roles: MANAGERS, does: "remove users from the company" },
  "notification-log:read": { roles: MANAGERS, does: "see what was pushed or e-mailed to everyone" },
} as const satisfies Record<string, Permission>;

/** The user asking, as the database knows them now (not as their token said at login). */
export interface Actor {
  userId: string;
  role: Role;
  /** The projects the user is assigned to; all a subcontractor can see. */
  assignedProjects: ReadonlySet<string>;
}

/** One question to {@link decide}. */
export interface AccessRequest {
  action: Action;
  /**
   * Where the resource belongs: a project's id; `null` for a company-wide
   * resource (a document of no project); absent for the company as a whole
   * (every project's list, the stock, the invoices).
   */
  project?: string | null;
  /** Who owns the row (an expense's submitter); a subcontractor sees only their own. */
  owner?: string;
  /** The resource as a refusal names it ("project p-harbor"); default "that". */
  resource?: string;
}

/** A refusal: `NOT_FOUND` where even the existence of the resource is not the user's to know. */
export interface Refusal {
  code: "FORBIDDEN" | "NOT_FOUND";
  message: string;
}

/** `true`, or why not. */
export type Decision = true | Refusal;

/**
 * Decides one request. A subcontractor is first confined to their projects:
 * anything outside them is `NOT_FOUND`, exactly like another company's row,
 * so ids cannot be probed. Then the role must be in the action's
 * {@link PERMISSIONS} entry, or the answer is `FORBIDDEN`, naming who may.
 * Last, a subcontractor may not act on the company as a whole (every
 * project's list, the staff feeds): `FORBIDDEN`.
 */
export function decide(actor: Actor, request: AccessRequest): Decision {
  const permission: Permission = PERMISSIONS[request.action];
  const { project } = request;
  const subcontractor = actor.role === "subcontractor";
  if (subcontractor && project !== undefined) {
    const outside = project === null || !actor.assignedProjects.has(project) || (request.owner !== undefined && request.owner !== actor.userId);
    if (outside) return { code: "NOT_FOUND", message: `No ${request.resource ?? "such resource"} in your company.` };
  }
  if (!permission.roles.includes(actor.role)) return { code: "FORBIDDEN", message: `Only ${who(permission.roles)} may ${permission.does}.` };
  if (subcontractor && project === undefined) {
    return { code: "FORBIDDEN", message: `Subcontractors may ${permission.does} only on the projects they are assigned to, not across the company.` };
  }
  return true;
}

/**
 * Whether a role may perform an action at all (somewhere). The dashboard
 * shows a button only when this holds; the server still decides each request.
 */
export function roleMay(role: Role, action: Action): boolean {
  return (PERMISSIONS[action].roles as readonly Role[]).includes(role);
}

/** Whether {@link decide} allows the request. */
export function allows(actor: Actor, request: AccessRequest): boolean {
  return decide(actor, request) === true;
}

function who(roles: readonly Role[]): string {
  const plural = roles.map((role) => `${role}s`);
  return plural.length === 1 ? plural[0]! : `${plural.slice(0, -1).join(", ")} and ${plural.at(-1)}`;
}
