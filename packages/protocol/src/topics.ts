/**
 * Topic names: what a client may ask to subscribe to and what the server
 * emits to with `toTopic`. A topic is ASCII letters, digits and `_ . @ -`,
 * in parts joined by `:` or `/`, each part starting with a letter or a digit,
 * at most {@link MAX_TOPIC_LENGTH} characters: `project:p-17`,
 * `site/tower-b/crew:4`. Anything else (whitespace, other Unicode, empty
 * parts, `__proto__`) is refused before any policy runs, so a policy never
 * has to defend against a crafted name.
 */

/** The longest topic name, in characters. */
export const MAX_TOPIC_LENGTH = 200;

const TOPIC = /^[A-Za-z0-9][A-Za-z0-9_.@-]*(?:[:/][A-Za-z0-9][A-Za-z0-9_.@-]*)*$/;

/** Whether `value` is a well-formed topic name (see the module's rules). */
export function isTopicName(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_TOPIC_LENGTH && TOPIC.test(value);
}
