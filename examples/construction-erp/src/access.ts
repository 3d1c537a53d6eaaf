/**
 * The policy of `policy.ts`, fed with facts from the database and offered to
 * both doors: REST routes call {@link ErpAccess.require} and
 * {@link ErpAccess.visible}, and the engine's `authorize` option is
 * {@link ErpAccess.authorize}. Role and assignments are read per request, so
 * a change takes effect at once, whatever the token said at login.
 *
 * @module
 */
import type { AuthorizePolicy, Principal } from "@truss/core";
import type { Repositories } from "./data/index.js";
import { HttpError } from "./http-errors.js";
import { decide, type AccessRequest, type Actor, type Decision, type Refusal } from "./policy.js";
import { COMPANY_FEEDS, parseTopic, type ErpTopicPattern } from "./topics.js";

/** A user of a company: a principal, or anyone the application asks about. */
export type UserRef = Pick<Principal, "companyId" | "userId">;

/** The policy bound to one database. */
export interface ErpAccess {
  /** The user as the database knows them now; `undefined` once removed. */
  actorOf(user: UserRef): Actor | undefined;
  /** The policy's answer for the user. */
  decide(user: UserRef, request: AccessRequest): Decision;
  /** @throws HttpError 403 `FORBIDDEN` or 404 `NOT_FOUND` unless the policy allows the request. */
  require(user: UserRef, request: AccessRequest): void;
  /** The rows the user may see, each asked about with `requestOf(row)`. */
  visible<T>(user: UserRef, rows: readonly T[], requestOf: (row: T) => AccessRequest): T[];
  /** A request about a document, with the project it belongs to looked up. */
  documentRequest(companyId: string, action: "document:read" | "document:write" | "document:rollback", type: string, id: string): AccessRequest;
  /** The engine's `authorize` option: the same decisions for topics, documents, events and presence. */
  authorize: AuthorizePolicy<ErpTopicPattern>;
}

const REMOVED = { code: "FORBIDDEN", message: "You are no longer a member of this company." } as const;

const missingProject = (projectId: string): Refusal => ({ code: "NOT_FOUND", message: `No project ${projectId} in your company.` });
const unknownTopic = (topic: string): Refusal => ({ code: "NOT_FOUND", message: `No topic ${topic} in your company.` });
const projectRead = (projectId: string): AccessRequest => ({ action: "project:read", project: projectId, resource: `project ${projectId}` });

/** Binds the policy to the repositories' facts. */
export function createAccess(repos: Repositories): ErpAccess {
  const actorOf = ({ companyId, userId }: UserRef): Actor | undefined => {
    const user = repos.users.get(companyId, userId);
    if (!user) return undefined;
    return { userId, role: user.role, assignedProjects: new Set(repos.assignments.projectsOf(companyId, userId)) };
  };

  const decideFor = (user: UserRef, request: AccessRequest): Decision => {
    const actor = actorOf(user);
    return actor ? decide(actor, request) : REMOVED;
  };

  const documentRequest: ErpAccess["documentRequest"] = (companyId, action, type, id) => ({
    action,
    project: repos.documentProjects.projectOf(companyId, type, id),
    resource: `document ${type}/${id}`,
  });

  /** Who may follow a topic, or see and join its presence: its project's readers, or its feed's. */
  const decideTopic = (principal: Principal, topic: string): Decision => {
    const parsed = parseTopic(topic);
    if (!parsed) return unknownTopic(topic);
    if ("feed" in parsed) return decideFor(principal, { action: COMPANY_FEEDS[parsed.feed] });
    // A project that does not exist is refused like one the user may not see.
    if (!repos.projects.get(principal.companyId, parsed.projectId)) return missingProject(parsed.projectId);
    return decideFor(principal, projectRead(parsed.projectId));
  };

  const authorize: AuthorizePolicy<ErpTopicPattern> = (principal, request) => {
    const { companyId } = principal;
    switch (request.action) {
      case "topic:subscribe":
        return decideTopic(principal, request.topic);
      case "document:read":
      case "document:write":
      case "document:rollback":
        return decideFor(principal, documentRequest(companyId, request.action, request.type, request.id));
      case "event":
        // `expense:submit`, the one client event, checks the project it names itself.
        return actorOf(principal) ? true : REMOVED;
      case "presence:join":
      case "presence:read": {
        // Asked again here, not left to the subscription: an assignment taken away since hides the project's presence at once.
        const { scope } = request;
        if ("topic" in scope) return decideTopic(principal, scope.topic);
        return decideFor(principal, documentRequest(companyId, "document:read", scope.type, scope.id));
      }
    }
  };

  return {
    actorOf,
    decide: decideFor,
    require(user, request) {
      const decision = decideFor(user, request);
      if (decision !== true) throw new HttpError(decision.code === "NOT_FOUND" ? 404 : 403, decision.code, decision.message);
    },
    visible(user, rows, requestOf) {
      const actor = actorOf(user);
      return actor ? rows.filter((row) => decide(actor, requestOf(row)) === true) : [];
    },
    documentRequest,
    authorize,
  };
}

/** The facts the policy needs, from a database that answers asynchronously (the ERP's `ErpData`). */
export interface AccessFacts {
  users: { get(companyId: string, userId: string): Promise<{ role: Actor["role"] } | undefined> };
  assignments: { projectsOf(companyId: string, userId: string): Promise<string[]> };
  documentProjects: { projectOf(companyId: string, type: string, id: string): Promise<string | null> };
  projects: { get(companyId: string, id: string): Promise<unknown> };
}

/** {@link ErpAccess} on a database that answers asynchronously: the same policy and decisions, as promises. */
export interface AsyncErpAccess {
  /** The user as the database knows them now; `undefined` once removed. */
  actorOf(user: UserRef): Promise<Actor | undefined>;
  /** The policy's answer for the user. */
  decide(user: UserRef, request: AccessRequest): Promise<Decision>;
  /** Rejects with HttpError 403 `FORBIDDEN` or 404 `NOT_FOUND` unless the policy allows the request. */
  require(user: UserRef, request: AccessRequest): Promise<void>;
  /** The rows the user may see, each asked about with `requestOf(row)`. */
  visible<T>(user: UserRef, rows: readonly T[], requestOf: (row: T) => AccessRequest): Promise<T[]>;
  /** A request about a document, with the project it belongs to looked up. */
  documentRequest(companyId: string, action: "document:read" | "document:write" | "document:rollback", type: string, id: string): Promise<AccessRequest>;
  /** The engine's `authorize` option. */
  authorize: AuthorizePolicy<ErpTopicPattern>;
}

/** Binds the policy to facts read asynchronously (SQLite through `ErpData`, or PostgreSQL); {@link createAccess} is the synchronous twin. */
export function createAsyncAccess(facts: AccessFacts): AsyncErpAccess {
  const actorOf = async ({ companyId, userId }: UserRef): Promise<Actor | undefined> => {
    const user = await facts.users.get(companyId, userId);
    if (!user) return undefined;
    return { userId, role: user.role, assignedProjects: new Set(await facts.assignments.projectsOf(companyId, userId)) };
  };

  const decideFor = async (user: UserRef, request: AccessRequest): Promise<Decision> => {
    const actor = await actorOf(user);
    return actor ? decide(actor, request) : REMOVED;
  };

  const documentRequest: AsyncErpAccess["documentRequest"] = async (companyId, action, type, id) => ({
    action,
    project: await facts.documentProjects.projectOf(companyId, type, id),
    resource: `document ${type}/${id}`,
  });

  const decideTopic = async (principal: Principal, topic: string): Promise<Decision> => {
    const parsed = parseTopic(topic);
    if (!parsed) return unknownTopic(topic);
    if ("feed" in parsed) return decideFor(principal, { action: COMPANY_FEEDS[parsed.feed] });
    if (!(await facts.projects.get(principal.companyId, parsed.projectId))) return missingProject(parsed.projectId);
    return decideFor(principal, projectRead(parsed.projectId));
  };

  const authorize: AuthorizePolicy<ErpTopicPattern> = async (principal, request) => {
    const { companyId } = principal;
    switch (request.action) {
      case "topic:subscribe":
        return decideTopic(principal, request.topic);
      case "document:read":
      case "document:write":
      case "document:rollback":
        return decideFor(principal, await documentRequest(companyId, request.action, request.type, request.id));
      case "event":
        return (await actorOf(principal)) ? true : REMOVED;
      case "presence:join":
      case "presence:read": {
        const { scope } = request;
        if ("topic" in scope) return decideTopic(principal, scope.topic);
        return decideFor(principal, await documentRequest(companyId, "document:read", scope.type, scope.id));
      }
    }
  };

  return {
    actorOf,
    decide: decideFor,
    async require(user, request) {
      const decision = await decideFor(user, request);
      if (decision !== true) throw new HttpError(decision.code === "NOT_FOUND" ? 404 : 403, decision.code, decision.message);
    },
    async visible(user, rows, requestOf) {
      const actor = await actorOf(user);
      return actor ? rows.filter((row) => decide(actor, requestOf(row)) === true) : [];
    },
    documentRequest,
    authorize,
  };
}
