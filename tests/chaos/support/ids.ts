/**
 * Ids chosen to break naive key and room schemes: separators and hash-tag
 * braces (`a:b`, `{t}`), URL escapes next to what they encode (`%3A`, `:`),
 * prototype names, Unicode in two normal forms, control and invisible
 * characters, Redis glob characters, and lengths far past the usual.
 */
export const CRAFTED_IDS: readonly string[] = [
  ":",
  "a:b",
  "{",
  "}",
  "{t}",
  "%",
  "%3A",
  "/",
  "a/b",
  "..",
  "\\",
  '"',
  "*",
  "?",
  "[object Object]",
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
  " ",
  "\t",
  "\u0000",
  "\u200b",
  "\u202e",
  "ü",
  "u\u0308",
  "🏗",
  "0",
  "-1",
  "null",
  "undefined",
  "x".repeat(300),
];

/** One case of the cross-tenant sweep: a company A and a company B whose ids (or users) might collide. */
export interface TenantPair {
  /** Company A's id. */
  a: string;
  /** Company B's id. */
  b: string;
  /** A's user; B's user too unless {@link TenantPair.userB} is set (the same `sub` in both tokens). */
  user: string;
  /** B's user, when the collision is between (company, user) pairs rather than a shared user id. */
  userB?: string;
  /** The device id both users' tokens carry. */
  device: string;
  /** Why the pair could collide. */
  why: string;
}

/** As long as an id may be (the engine refuses one past 256 characters). */
const long = "x".repeat(256);

export const TENANT_PAIRS: readonly TenantPair[] = [
  { a: "acme", b: "globex", user: "u1", device: "phone", why: "plain ids, same user and device" },
  { a: "a", b: "a:b", user: "b:c", userB: "c", device: "phone", why: "company:user joined with ':' names the same pair" },
  { a: "a:b", b: "a", user: "u", device: ":", why: "separator in a company id; ':' as device" },
  { a: "%3A", b: ":", user: ":", device: "%3A", why: "an id and its URL encoding" },
  { a: "{t}", b: "t", user: "{t}", device: "{t}", why: "a Redis hash tag in the ids" },
  { a: "__proto__", b: "constructor", user: "__proto__", device: "__proto__", why: "prototype keys" },
  { a: "toString", b: "hasOwnProperty", user: "constructor", device: "prototype", why: "Object.prototype members" },
  { a: "ü", b: "u\u0308", user: "ü", device: "phone", why: "one letter in two Unicode normal forms" },
  { a: long, b: `${long.slice(1)}y`, user: long, device: long.slice(0, 100), why: "long ids differing in the last character" },
  { a: " ", b: "  ", user: " ", device: " ", why: "blank-looking ids" },
  { a: "\u0000", b: "\u200b", user: "\u0000", device: "\u0000", why: "NUL and a zero-width space" },
  { a: "0", b: "00", user: "0", device: "0", why: "numeric-looking ids" },
  { a: "null", b: "undefined", user: "null", device: "undefined", why: "stringified nothing" },
  { a: "[object Object]", b: "[object Object] ", user: "[object Object]", device: "phone", why: "what an object becomes as a string" },
  { a: "a/b", b: "a%2Fb", user: "/", device: "/", why: "a path separator and its encoding" },
  { a: "*", b: "?", user: "*", device: "*", why: "Redis glob characters" },
  { a: '["a","b"]', b: "a", user: "b", device: "phone", why: "a JSON array that spells another (company, user) pair" },
  { a: "company:acme", b: "acme", user: "u", device: "phone", why: "a company id that spells another company's room" },
  { a: "🏗", b: "🏘", user: "🏗", device: "🏗", why: "astral-plane characters" },
];
