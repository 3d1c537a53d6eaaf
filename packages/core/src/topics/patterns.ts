import { isTopicName, MAX_TOPIC_LENGTH } from "@truss/protocol";
import { TrussError } from "../kernel/errors.js";

/** The names of a pattern's parameters: `"site:{siteId}:crew:{crewId}"` → `"siteId" | "crewId"`. */
export type TopicParamNames<P extends string> = P extends `${string}{${infer Name}}${infer Rest}` ? Name | TopicParamNames<Rest> : never;

/** The parsed parameters of a topic that matched pattern `P`; any string keys when `P` is not a literal. */
export type TopicParams<P extends string> = string extends P ? Readonly<Record<string, string>> : { readonly [K in TopicParamNames<P>]: string };

/**
 * A topic pattern the server accepts subscriptions for: a topic name whose
 * `{name}` parts match one part of a topic each (`project:{projectId}` matches
 * `project:p-17`, not `project:p-17:x`). The object form narrows a parameter
 * further with a regular expression it must match in full.
 */
export type TopicPatternDeclaration<P extends string = string> =
  | P
  | {
      /** The pattern, as in the string form. */
      pattern: P;
      /** Per parameter, an expression its value must match (`{ projectId: /^p-\d+$/ }`). */
      params?: { readonly [K in TopicParamNames<P>]?: RegExp };
    };

/** The `topics` option. */
export interface TopicOptions<P extends string = string> {
  /**
   * The shapes of topic a client may subscribe to. A topic matching none is
   * refused with `INVALID_PAYLOAD` before the policy runs, and the policy
   * gets the matched pattern and its parsed `params`. Without patterns any
   * well-formed topic name goes to the policy as it is.
   */
  patterns?: readonly TopicPatternDeclaration<P>[];
}

/** The default `limits.maxSubscriptionsPerConnection`. */
export const DEFAULT_MAX_TOPICS_PER_CONNECTION = 100;

/** A topic that matched a declared pattern. */
export interface TopicMatch {
  pattern: string;
  params: Readonly<Record<string, string>>;
}

interface CompiledPattern {
  pattern: string;
  expression: RegExp;
  names: string[];
  constraints: Array<RegExp | undefined>;
}

const PARAMETER = /\{([A-Za-z_$][A-Za-z0-9_$]*)\}/g;
/** What one parameter matches: one part of a topic name, as {@link isTopicName} defines parts. */
const PART = "([A-Za-z0-9][A-Za-z0-9_.@-]*)";

/**
 * The declared topic patterns, compiled once. {@link match} names the first
 * pattern a topic fits, with its parameters, or refuses the topic.
 */
export class TopicPatterns {
  private readonly compiled: CompiledPattern[] | null;

  /** @throws TypeError when a pattern is malformed, so a typo fails at start-up. */
  constructor(declarations: readonly TopicPatternDeclaration[] | undefined) {
    this.compiled = declarations && declarations.length > 0 ? declarations.map(compile) : null;
  }

  /**
   * The pattern and parameters of a client's topic; without declared patterns
   * the topic is its own pattern with no parameters.
   *
   * @throws TrussError `INVALID_PAYLOAD` for a malformed topic or one no pattern matches.
   */
  match(topic: unknown): TopicMatch & { topic: string } {
    if (!isTopicName(topic)) {
      throw new TrussError(
        "INVALID_PAYLOAD",
        `"topic" must be a topic name: ASCII letters, digits and _ . @ - in parts joined by : or /, each part starting with a letter or digit, at most ${MAX_TOPIC_LENGTH} characters.`,
      );
    }
    if (!this.compiled) return { topic, pattern: topic, params: Object.freeze(Object.create(null) as Record<string, string>) };
    for (const candidate of this.compiled) {
      const found = candidate.expression.exec(topic);
      if (!found) continue;
      const params = Object.create(null) as Record<string, string>;
      let fits = true;
      candidate.names.forEach((name, index) => {
        const value = found[index + 1]!;
        const constraint = candidate.constraints[index];
        if (constraint && !fullMatch(constraint, value)) fits = false;
        params[name] = value;
      });
      if (fits) return { topic, pattern: candidate.pattern, params: Object.freeze(params) };
    }
    throw new TrussError("INVALID_PAYLOAD", `Topic "${topic}" matches none of the topics this server offers.`);
  }
}

function compile(declaration: TopicPatternDeclaration): CompiledPattern {
  const { pattern, params: constraints = {} } = typeof declaration === "string" ? { pattern: declaration, params: {} } : declaration;
  if (typeof pattern !== "string") throw new TypeError(`topics.patterns: ${JSON.stringify(declaration)} is not a pattern string or { pattern, params }.`);
  const names = [...pattern.matchAll(PARAMETER)].map((found) => found[1]!);
  if (new Set(names).size !== names.length) throw new TypeError(`topics.patterns: "${pattern}" names a parameter twice.`);
  // With each parameter standing for a valid part, the pattern must spell a valid topic.
  if (!isTopicName(pattern.replace(PARAMETER, "x")) || pattern.replace(PARAMETER, "").includes("{")) {
    throw new TypeError(`topics.patterns: "${pattern}" is not a topic name with {parameter} parts (e.g. "project:{projectId}").`);
  }
  for (const [name, constraint] of Object.entries(constraints as Record<string, unknown>)) {
    if (!names.includes(name)) throw new TypeError(`topics.patterns: "${pattern}" has no parameter "${name}" to constrain.`);
    if (!(constraint instanceof RegExp)) throw new TypeError(`topics.patterns: the constraint of "${name}" in "${pattern}" must be a RegExp.`);
  }
  const literal = pattern.split(PARAMETER);
  // split with a capture group alternates literal text and parameter names.
  let source = "^";
  literal.forEach((part, index) => {
    source += index % 2 === 0 ? part.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&") : PART;
  });
  return {
    pattern,
    expression: new RegExp(`${source}$`),
    names,
    constraints: names.map((name) => (constraints as Record<string, RegExp | undefined>)[name]),
  };
}

function fullMatch(expression: RegExp, value: string): boolean {
  expression.lastIndex = 0;
  const found = expression.exec(value);
  return found !== null && found.index === 0 && found[0].length === value.length;
}
