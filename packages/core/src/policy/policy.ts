import type { Principal } from "../kernel/principal.js";
import { clientRefusal, messageOf, type TrussError } from "../kernel/errors.js";
import type { EngineContext } from "../kernel/context.js";
import { isThenable } from "../kernel/contract.js";
import { DeadlineExceeded, withinDeadline } from "@truss/protocol";
import type { TopicParams } from "../topics/patterns.js";
import type { PresenceScope } from "@truss/protocol";

/** A topic subscription the policy is asked about, with the pattern it matched and its parsed parameters. */
export type TopicSubscribeRequest<P extends string = string> = P extends string
  ? {
      action: "topic:subscribe";
      /** The topic as the client named it (`project:p-17`). */
      topic: string;
      /** The declared pattern it matched (`project:{projectId}`); the topic itself when no patterns are declared. */
      pattern: P;
      /** The pattern's parameters (`{ projectId: "p-17" }`); empty when no patterns are declared. */
      params: TopicParams<P>;
    }
  : never;

/** A document operation the policy is asked about. History is a read. */
export interface DocumentRequest {
  /**
   * `document:read` covers `document:get`, `document:history` and
   * `document:watch`. A `document:update` is asked as `document:write` only
   * once `document:read` allowed it (its answer carries the document), and a
   * `document:rollback` only once both allowed it: it reads and writes.
   */
  action: "document:read" | "document:write" | "document:rollback";
  /** The document's kind. */
  type: string;
  /** The document's id. */
  id: string;
}

/** An application client event (one registered with `engine.handle`) the policy is asked about. */
export interface EventRequest {
  action: "event";
  /** The event's name. */
  event: string;
}

/**
 * Presence in a scope the policy is asked about: `presence:join` before a
 * socket joins a scope's presence (which also shows it the scope's members),
 * `presence:read` before it lists them without joining. Either is asked only
 * of a socket that holds the scope already: subscribed to the topic, or
 * watching the document.
 */
export interface PresenceRequest {
  action: "presence:join" | "presence:read";
  /** The topic (`{ topic }`) or document (`{ type, id }`). */
  scope: PresenceScope;
}

/**
 * Everything the `authorize` policy is asked about, by `action`. The company
 * is always the principal's: a request never names another tenant.
 */
export type AuthorizationRequest<P extends string = string> = TopicSubscribeRequest<P> | DocumentRequest | EventRequest | PresenceRequest;

/**
 * A refusal with a reason for the client. `code` defaults to `FORBIDDEN`;
 * `NOT_FOUND` hides that the resource exists at all.
 */
export interface AuthorizationRefusal {
  code?: "FORBIDDEN" | "NOT_FOUND";
  message: string;
}

/**
 * A refusal as the engine answers it: the policy's own (`FORBIDDEN`,
 * `NOT_FOUND`), or `INTERNAL_ERROR` when the policy could not decide (it
 * threw, rejected or did not answer in time). Either way nothing is allowed;
 * a client may try the undecided again (a passing outage of what the policy
 * reads), up to its bound for that code, where a refusal is final.
 */
type Refusal = { code?: AuthorizationRefusal["code"] | "INTERNAL_ERROR"; message: string };

/** What a policy answers: `true` allows; `false` or a refusal refuses. Anything else refuses too. */
export type AuthorizationResult = boolean | AuthorizationRefusal;

/**
 * The application's authorization policy: runs before every socket operation
 * that touches a resource, sync or async. Share it with your REST routes so
 * both doors agree.
 *
 * @example
 * ```ts
 * const authorize: AuthorizePolicy<"project:{projectId}"> = (principal, request) => {
 *   switch (request.action) {
 *     case "topic:subscribe": return canSeeProject(principal, request.params.projectId);
 *     case "document:rollback": return principal.roles.includes("manager");
 *     default: return true;
 *   }
 * };
 * ```
 */
export type AuthorizePolicy<P extends string = string> = (
  principal: Principal,
  request: AuthorizationRequest<P>,
) => AuthorizationResult | Promise<AuthorizationResult>;

/** The default `limits.authorizeTimeoutMs`. */
export const DEFAULT_AUTHORIZE_TIMEOUT_MS = 5_000;

/**
 * Runs the application's policy and turns its answer into allow or a coded
 * refusal: only `true` allows; `false`, a refusal, anything else, a throw,
 * a rejection or no answer within the timeout refuses. Each refusal is
 * counted by action. Without a policy, documents and events are open to the
 * whole tenant (as before policies existed) and topics are closed, so a
 * deployment that never wrote one opens nothing by accident.
 */
export class Policy {
  constructor(
    private readonly ctx: EngineContext,
    private readonly authorize: AuthorizePolicy | undefined,
    private readonly timeoutMs: number,
  ) {}

  /** Whether a policy is configured: it decides who hears document updates. */
  get configured(): boolean {
    return this.authorize !== undefined;
  }

  /**
   * Returns when allowed, throws a coded {@link TrussError} when refused. A
   * synchronous policy (or none) is answered synchronously, so the common
   * path adds no promise; an asynchronous one returns a promise of the same.
   */
  check(principal: Principal, request: AuthorizationRequest): void | Promise<void> {
    const decision = this.decide(principal, request);
    if (decision instanceof Promise) return decision.then(throwIfRefused);
    throwIfRefused(decision);
  }

  /** The refusal, or `null` when allowed; never throws or rejects. */
  decide(principal: Principal, request: AuthorizationRequest): Refusal | null | Promise<Refusal | null> {
    const { authorize } = this;
    if (!authorize) {
      if (request.action !== "topic:subscribe") return null;
      return this.refused(request, { message: `Topic "${request.topic}" was refused: this server has no authorize policy, and topics stay closed without one.` });
    }
    let answer: AuthorizationResult | PromiseLike<AuthorizationResult>;
    let pending: boolean;
    try {
      answer = authorize(principal, request);
      // Inside the try: an answer's `then` is a getter the application wrote, and may throw.
      pending = isThenable(answer);
    } catch (error) {
      return this.failed(request, error);
    }
    if (!pending) return this.judge(request, answer as AuthorizationResult);
    return withinDeadline(answer, this.timeoutMs).then(
      (result) => this.judge(request, result),
      (error: unknown) => {
        if (!(error instanceof DeadlineExceeded)) return this.failed(request, error);
        this.ctx.logger.warn("the authorize policy did not answer in time; refused", { action: request.action, timeoutMs: this.timeoutMs });
        return this.refused(request, { code: "INTERNAL_ERROR", message: `${describe(request)} was refused: the authorization check did not answer in time.` });
      },
    );
  }

  /** Only `true` allows; a refusal keeps its message; anything else refuses. */
  private judge(request: AuthorizationRequest, result: unknown): Refusal | null {
    if (result === true) return null;
    if (isRefusal(result)) return this.refused(request, { code: result.code === "NOT_FOUND" ? "NOT_FOUND" : "FORBIDDEN", message: result.message });
    return this.refused(request, { message: `${describe(request)} is not allowed for this user.` });
  }

  private failed(request: AuthorizationRequest, error: unknown): Refusal {
    this.ctx.logger.warn("the authorize policy threw; refused", { action: request.action, error: messageOf(error) });
    return this.refused(request, { code: "INTERNAL_ERROR", message: `${describe(request)} was refused: the authorization check failed; the server logged why.` });
  }

  private refused(request: AuthorizationRequest, refusal: Refusal): Refusal {
    this.ctx.metrics.inc("truss_authorization_refusals_total", { action: request.action });
    return refusal;
  }
}

function throwIfRefused(refusal: Refusal | null): void {
  if (refusal) throw clientRefusal(refusal.code ?? "FORBIDDEN", refusal.message);
}

function isRefusal(value: unknown): value is AuthorizationRefusal {
  return typeof value === "object" && value !== null && typeof (value as AuthorizationRefusal).message === "string";
}

function describe(request: AuthorizationRequest): string {
  switch (request.action) {
    case "topic:subscribe":
      return `Subscribing to "${request.topic}"`;
    case "event":
      return `"${request.event}"`;
    case "presence:join":
    case "presence:read":
      return `${request.action === "presence:join" ? "Joining" : "Reading"} the presence of ${"topic" in request.scope ? `topic "${request.scope.topic}"` : `${request.scope.type}/${request.scope.id}`}`;
    default:
      return `${request.action.slice("document:".length)} of ${request.type}/${request.id}`.replace(/^./, (c) => c.toUpperCase());
  }
}
