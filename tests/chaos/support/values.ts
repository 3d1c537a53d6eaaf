import fc from "fast-check";
import { CRAFTED_IDS } from "./ids.js";

/**
 * A value to send, described rather than built, so that a counterexample
 * fast-check prints stays a few lines long even when the value it stands for
 * is 2,000 levels deep or 260 KB wide. {@link buildValue} makes the value.
 */
export type ValueSpec =
  | { leaf: unknown }
  | { array: ValueSpec[] }
  /** Entries set as own properties, so `__proto__` is a key and not a prototype. */
  | { object: Array<[string, ValueSpec]> }
  | { deep: number; of: "array" | "object" }
  | { big: number; of: "ascii" | "multibyte" }
  | { repeat: number; item: ValueSpec }
  /** A token from the test's table: the connection's own, another company's, an expired one, garbage. */
  | { token: TokenName };

export type TokenName = "same" | "otherCompany" | "expired" | "garbage" | "empty" | "huge";

/** Builds the value a spec describes; `tokens` resolves `{ token }` specs. */
export function buildValue(spec: ValueSpec, tokens: Partial<Record<TokenName, string>> = {}): unknown {
  if ("leaf" in spec) return spec.leaf;
  if ("array" in spec) return spec.array.map((item) => buildValue(item, tokens));
  if ("object" in spec) {
    const object: Record<string, unknown> = {};
    for (const [key, value] of spec.object) {
      Object.defineProperty(object, key, { value: buildValue(value, tokens), enumerable: true, writable: true, configurable: true });
    }
    return object;
  }
  if ("deep" in spec) {
    let value: unknown = 0;
    for (let level = 0; level < spec.deep; level++) value = spec.of === "array" ? [value] : { d: value };
    return value;
  }
  if ("big" in spec) return spec.of === "ascii" ? "x".repeat(spec.big) : "é".repeat(Math.ceil(spec.big / 2));
  if ("repeat" in spec) {
    const item = buildValue(spec.item, tokens);
    return Array.from({ length: spec.repeat }, () => item);
  }
  return tokens[spec.token];
}

const specialLeaf = fc.constantFrom<unknown>(
  null,
  true,
  false,
  0,
  -0,
  -1,
  2 ** 53,
  -(2 ** 53),
  1e308,
  5e-324,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  "",
  "12345678901234567890n",
  "9007199254740993",
  "1n",
  "0x1F",
  "__proto__",
  "constructor",
  "{}",
  "[]",
  "0-0",
  "1-1",
  "\ud800",
  "\u0000",
);

/** Scalars: special values, Unicode strings with lone surrogates, numbers, crafted ids. */
export const leafSpec: fc.Arbitrary<ValueSpec> = fc
  .oneof(specialLeaf, fc.string({ unit: "binary", maxLength: 12 }), fc.double(), fc.integer(), fc.constantFrom(...CRAFTED_IDS))
  .map((leaf) => ({ leaf }));

/** Object keys that have broken parsers and merges before. */
export const keySpec: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("__proto__", "constructor", "prototype", "toString", "", ":", "$where", "_placeholder", "num", "type", "id", "data"),
  fc.string({ unit: "binary", maxLength: 6 }),
);

/**
 * Far deeper than `limits.maxDepth` (64), or just around it. Capped at 2,000
 * here because socket.io-client must encode it; raw frames go 100,000 deep.
 */
export const deepSpec: fc.Arbitrary<ValueSpec> = fc.record({
  deep: fc.oneof(fc.integer({ min: 60, max: 70 }), fc.integer({ min: 100, max: 2_000 })),
  of: fc.constantFrom("array" as const, "object" as const),
});

/** Around `maxPayloadBytes` (64 KiB) and `maxDocumentBytes` (256 KiB), or small. */
export const bigSpec: fc.Arbitrary<ValueSpec> = fc.record({
  big: fc.oneof(fc.integer({ min: 60_000, max: 70_000 }), fc.integer({ min: 250_000, max: 270_000 }), fc.integer({ min: 1, max: 5_000 })),
  of: fc.constantFrom("ascii" as const, "multibyte" as const),
});

/** Any JSON-ish value: nested arrays and objects of leaves, with the odd deep value. */
export const anySpec: fc.Arbitrary<ValueSpec> = fc.letrec<{ value: ValueSpec }>((tie) => ({
  value: fc.oneof(
    { maxDepth: 3, depthSize: "small" },
    { arbitrary: leafSpec, weight: 6 },
    { arbitrary: fc.array(tie("value"), { maxLength: 4 }).map((array) => ({ array })), weight: 2 },
    { arbitrary: fc.array(fc.tuple(keySpec, tie("value")), { maxLength: 4 }).map((object) => ({ object })), weight: 2 },
    { arbitrary: deepSpec, weight: 1 },
  ),
})).value;

/** An object of fields, each the right kind of value most of the time and anything otherwise. */
export function objectOf(fields: Record<string, fc.Arbitrary<ValueSpec>>): fc.Arbitrary<ValueSpec> {
  const entries = Object.entries(fields).map(([key, arbitrary]) =>
    fc.option(fc.oneof({ arbitrary, weight: 5 }, { arbitrary: anySpec, weight: 1 }), { freq: 6, nil: undefined }).map(
      (value) => (value === undefined ? null : ([key, value] as [string, ValueSpec])),
    ),
  );
  return fc
    .tuple(...entries, fc.array(fc.tuple(keySpec, anySpec), { maxLength: 2 }))
    .map((parts) => {
      const extra = parts[parts.length - 1] as Array<[string, ValueSpec]>;
      const known = (parts.slice(0, -1) as Array<[string, ValueSpec] | null>).filter((entry) => entry !== null);
      return { object: [...known, ...extra] };
    });
}

const leaf = (...values: unknown[]): fc.Arbitrary<ValueSpec> => fc.constantFrom(...values).map((value) => ({ leaf: value }));

/** Document types and ids: a few names shared across runs (so documents get updated), crafted ids, lone surrogates, the length limit. */
export const docIdSpec: fc.Arbitrary<ValueSpec> = fc.oneof(
  { arbitrary: leaf("p1", "p2", "note"), weight: 4 },
  { arbitrary: leaf(...CRAFTED_IDS), weight: 2 },
  { arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 4 }).map((value) => ({ leaf: value })), weight: 1 },
  { arbitrary: leaf("y".repeat(256), "y".repeat(257), "\ud800", "\udfff-x", "a\ud83c"), weight: 1 },
);

const versionSpec: fc.Arbitrary<ValueSpec> = fc.oneof(
  fc.integer({ min: 0, max: 4 }).map((value) => ({ leaf: value })),
  leaf(-1, 1.5, 2 ** 53, 1e21, "1", null),
);

const limitSpec: fc.Arbitrary<ValueSpec> = fc.oneof(fc.integer({ min: -1, max: 150 }).map((value) => ({ leaf: value })), leaf(1e9, 0.5, "20"));

const inboxIdsSpec: fc.Arbitrary<ValueSpec> = fc.oneof(
  fc
    .array(
      fc.oneof(
        leaf("0-0", "1-0", "9999999999999999-9999999999999999", "99999999999999999-1", "1-1-1", "-1-1", "1e3-1", "01-01"),
        leafSpec,
      ),
      { maxLength: 4 },
    )
    .map((array) => ({ array })),
  fc.constantFrom(1000, 1001, 5000).map((repeat) => ({ repeat, item: { leaf: "1-1" } })),
);

const tokenSpec: fc.Arbitrary<ValueSpec> = fc
  .constantFrom<TokenName>("same", "otherCompany", "expired", "garbage", "empty", "huge")
  .map((token) => ({ token }));

/** One client event to send: its name, its payload (absent: no argument), and whether it asks for an ack. */
export interface EventSpec {
  event: string;
  payload: ValueSpec | undefined;
  ack: boolean;
}

/** Application events the fuzzed engine registers. */
export const APP_EVENTS = { echo: "chaos:echo", silent: "chaos:silent" } as const;

const changesSpec = fc.oneof(
  { arbitrary: fc.array(fc.tuple(keySpec, fc.oneof(anySpec, bigSpec)), { maxLength: 3 }).map((object) => ({ object })), weight: 4 },
  { arbitrary: anySpec, weight: 1 },
);

/** Topic names: declared shapes (allowed, refused, throwing in the fuzz policy), near misses and anything. */
const topicSpec: fc.Arbitrary<ValueSpec> = fc.oneof(
  leaf("project:p1", "project:deny", "crew:7", "crew:x", "project:a:b", "__proto__", "project:__proto__", "project:\u00fc", "project:\ud800", "", "p".repeat(10_240)),
  fc.string({ unit: "binary", maxLength: 40 }).map((text) => ({ leaf: `project:${text}` })),
  docIdSpec,
);

const payloadByEvent: Record<string, fc.Arbitrary<ValueSpec>> = {
  "document:get": objectOf({ type: docIdSpec, id: docIdSpec }),
  "document:update": objectOf({
    type: docIdSpec,
    id: docIdSpec,
    baseVersion: versionSpec,
    changes: changesSpec,
    clientTs: fc.oneof(leafSpec, leaf(Date.now())),
  }),
  "document:history": objectOf({ type: docIdSpec, id: docIdSpec, limit: limitSpec }),
  "document:rollback": objectOf({ type: docIdSpec, id: docIdSpec, toVersion: versionSpec }),
  "document:watch": objectOf({ type: docIdSpec, id: docIdSpec }),
  "document:unwatch": objectOf({ type: docIdSpec, id: docIdSpec }),
  "topic:subscribe": objectOf({ topic: topicSpec }),
  "topic:unsubscribe": objectOf({ topic: topicSpec }),
  "inbox:ack": objectOf({ ids: inboxIdsSpec }),
  "presence:list": objectOf({}),
  "auth:refresh": objectOf({ token: tokenSpec }),
  [APP_EVENTS.echo]: fc.oneof(anySpec, bigSpec),
  [APP_EVENTS.silent]: anySpec,
};

/** Names no handler is registered for, server-to-client names, and names that shadow prototype members. */
const strayEvents = fc.constantFrom(
  "chaos:unknown",
  "document:updated",
  "inbox:message",
  "presence:update",
  "auth:expiring",
  "__proto__",
  "constructor",
  "toString",
  "hasOwnProperty",
  "",
  ":",
  "x".repeat(2000),
);

/** Four events in five ask for an ack; the others must be answered with an `error` event when they fail. */
const mostlyAcked = fc.oneof({ arbitrary: fc.constant(true), weight: 4 }, { arbitrary: fc.constant(false), weight: 1 });

/** One client event: mostly protocol events with protocol-shaped payloads, sometimes anything. */
export const eventSpec: fc.Arbitrary<EventSpec> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .constantFrom(...Object.keys(payloadByEvent))
      .chain((event) =>
        fc.record({
          event: fc.constant(event),
          payload: fc.oneof({ arbitrary: payloadByEvent[event]!, weight: 9 }, { arbitrary: fc.oneof(anySpec, bigSpec), weight: 1 }),
          ack: mostlyAcked,
        }),
      ),
  },
  {
    weight: 1,
    arbitrary: fc.record({ event: strayEvents, payload: fc.option(anySpec, { nil: undefined }), ack: mostlyAcked }),
  },
);

const docRequest = (event: string, fields: Record<string, unknown>): EventSpec => ({
  event,
  payload: { object: Object.entries(fields).map(([key, leaf]) => [key, { leaf }] as [string, ValueSpec]) },
  ack: true,
});

/**
 * Inputs that broke an engine like this one before, run first on every seed
 * so a regression never depends on the random draw: ids with lone surrogates
 * (which `encodeURIComponent` throws on), prototype keys in changes, an ack
 * list past its cap, a token far past any real one, a 2,000-deep payload.
 */
export const KNOWN_HAZARDS: EventSpec[][] = [
  [docRequest("document:get", { type: "\udfff-x", id: "p1" })],
  [docRequest("document:update", { type: "note", id: "\ud800", baseVersion: 0, changes: { a: 1 } })],
  [docRequest("document:history", { type: "note", id: "a\ud83c", limit: 5 })],
  [docRequest("document:rollback", { type: "\ud800", id: "p1", toVersion: 1 })],
  [
    {
      event: "document:update",
      payload: {
        object: [
          ["type", { leaf: "note" }],
          ["id", { leaf: "proto" }],
          ["baseVersion", { leaf: 0 }],
          ["changes", { object: [["__proto__", { object: [["polluted", { leaf: true }]] }], ["constructor", { leaf: 1 }]] }],
        ],
      },
      ack: true,
    },
  ],
  [{ event: "inbox:ack", payload: { object: [["ids", { repeat: 1001, item: { leaf: "1-1" } }]] }, ack: true }],
  [{ event: "auth:refresh", payload: { object: [["token", { token: "huge" }]] }, ack: true }],
  [{ event: APP_EVENTS.echo, payload: { deep: 2_000, of: "array" }, ack: true }],
  [{ event: "document:update", payload: { deep: 2_000, of: "object" }, ack: false }],
];
