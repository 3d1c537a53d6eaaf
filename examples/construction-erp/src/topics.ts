/**
 * The topics a socket may subscribe to, and their names. No server import:
 * the dashboard builds its topic names with the same functions.
 *
 * - `project:{projectId}`: one project's changes (`project:updated`,
 *   `project:deleted`) and who is viewing its page (its presence), for
 *   whoever may see it.
 * - `company:{feed}`: company-wide feeds for staff (managers and members):
 *   `company:projects` (`project:created`), `company:inventory` (stock) and
 *   `company:invoices` (invoices and payments).
 *
 * @module
 */
import { allows } from "./policy.js";
import type { Role } from "./seed.js";

/** The company-wide feeds, each with the action the policy checks to subscribe to it. */
export const COMPANY_FEEDS = {
  projects: "project:read",
  inventory: "inventory:read",
  invoices: "invoice:read",
} as const;

/** One of {@link COMPANY_FEEDS}. */
export type CompanyFeed = keyof typeof COMPANY_FEEDS;

/** The engine's topic patterns, as a type for its `authorize` option. */
export type ErpTopicPattern = "project:{projectId}" | "company:{feed}";

/** The engine's `topics.patterns`: anything else is refused before the policy runs. */
export const TOPIC_PATTERNS = [
  "project:{projectId}",
  { pattern: "company:{feed}", params: { feed: new RegExp(`^(${Object.keys(COMPANY_FEEDS).join("|")})$`) } },
] as const;

/** The topic of one project: `project:p-riverside`. */
export const projectTopic = (projectId: string): string => `project:${projectId}`;

/**
 * What a topic name stands for: a project, or a company-wide feed;
 * `undefined` for a name of neither pattern. The policy asks it about the
 * topic of a subscription and of a presence scope alike.
 */
export function parseTopic(topic: string): { projectId: string } | { feed: CompanyFeed } | undefined {
  const colon = topic.indexOf(":");
  if (colon < 0) return undefined;
  const kind = topic.slice(0, colon);
  const rest = topic.slice(colon + 1);
  if (kind === "project" && rest.length > 0) return { projectId: rest };
  if (kind === "company" && Object.hasOwn(COMPANY_FEEDS, rest)) return { feed: rest as CompanyFeed };
  return undefined;
}

/** The topic of a company-wide feed: `company:inventory`. */
export const companyTopic = (feed: CompanyFeed): string => `company:${feed}`;

/** Whether the policy lets a role subscribe to a company-wide feed; the dashboard asks before it tries. */
export const mayFollowFeed = (role: Role, feed: CompanyFeed): boolean => allows({ userId: "", role, assignedProjects: new Set() }, { action: COMPANY_FEEDS[feed] });
