import type { Principal } from "../auth/authenticator.js";
import { TrussError } from "../errors.js";
import type { EngineContext } from "./context.js";
import type { TopicParams } from "./topics.js";

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
  /** `document:read` covers `document:get`, `document:history` and `document:watch`. */
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
 * Everything the `authorize` policy is asked about, by `action`. The company
 * is always the principal's: a request never names another tenant.
 */
export type AuthorizationRequest<P extends string = string> = TopicSubscribeRequest<P> | DocumentRequest | EventRequest;

/**
 * A refusal with a reason for the client. `code` defaults to `FORBIDDEN`;
 * `NOT_FOUND` hides that the resource exists at all.
 */
export interface AuthorizationRefusal {
  code?: "FORBIDDEN" | "NOT_FOUND";
  message: string;
}

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

  /** Resolves when allowed; rejects with a coded {@link TrussError} when refused. */
  async check(principal: Principal, request: AuthorizationRequest): Promise<void> {
    const refusal = await this.decide(principal, request);
    if (refusal) throw new TrussError(refusal.code ?? "FORBIDDEN", refusal.message);
  }

  /** The refusal, or `null` when allowed; never rejects. */
  async decide(principal: Principal, request: AuthorizationRequest): Promise<AuthorizationRefusal | null> {
    const refusal = await this.evaluate(principal, request);
    if (refusal) this.ctx.metrics.inc("truss_authorization_refusals_total", { action: request.action });
    return refusal;
  }

  private async evaluate(principal: Principal, request: AuthorizationRequest): Promise<AuthorizationRefusal | null> {
    const { authorize } = this;
    if (!authorize) {
      return request.action === "topic:subscribe"
        ? { message: `Topic "${request.topic}" was refused: this server has no authorize policy, and topics stay closed without one.` }
        : null;
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      const answer = authorize(principal, Object.freeze({ ...request }) as AuthorizationRequest);
      // A synchronous answer is used as it is: no promise, no timer on the common path.
      const result = isThenable(answer)
          ? await Promise.race([
              answer,
              new Promise<"timeout">((resolve) => {
                timer = setTimeout(resolve, this.timeoutMs, "timeout");
              }),
            ])
          : answer;
      if (result === true) return null;
      if (result === "timeout") {
        this.ctx.logger.warn("the authorize policy did not answer in time; refused", { action: request.action, timeoutMs: this.timeoutMs });
        return { message: `${describe(request)} was refused: the authorization check did not answer in time.` };
      }
      if (isRefusal(result)) return { code: result.code === "NOT_FOUND" ? "NOT_FOUND" : "FORBIDDEN", message: result.message };
      return { message: `${describe(request)} is not allowed for this user.` };
    } catch (error) {
      this.ctx.logger.warn("the authorize policy threw; refused", {
        action: request.action,
        error: error instanceof Error ? error.message : String(error),
      });
      return { message: `${describe(request)} was refused: the authorization check failed; the server logged why.` };
    } finally {
      clearTimeout(timer);
    }
  }
}

function isThenable(value: unknown): value is PromiseLike<AuthorizationResult> {
  return typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function";
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
    default:
      return `${request.action.slice("document:".length)} of ${request.type}/${request.id}`.replace(/^./, (c) => c.toUpperCase());
  }
}
