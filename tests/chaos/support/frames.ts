import fc from "fast-check";
import { anySpec, buildValue, deepSpec, leafSpec, type TokenName, type ValueSpec } from "./values.js";

/**
 * One WebSocket frame of a hand-made Socket.IO session, described so a
 * counterexample prints small. Text frames are Engine.IO packets (`4` is a
 * message, whose first character is the Socket.IO packet type).
 */
export type FrameSpec =
  /** A literal text frame. */
  | { text: string }
  /** A Socket.IO event or binary event, built as `4<type>[<attachments>-][<nsp>,][<id>]<json>`. */
  | { type: "2" | "5"; event: string; args: ValueSpec[]; id?: number; nsp?: string; attachments?: number }
  /** Random bytes in a binary frame (an attachment, or garbage). */
  | { binary: number[] }
  /** A text frame that is not UTF-8. */
  | { invalidUtf8: number }
  /** `42["<event>", [[[...]]]]` nested `depth` levels, written as text (too deep for a recursive encoder). */
  | { deepText: number; event: string }
  /** A text frame of this many bytes: past the transport's 1 MiB cap the server must close, not buffer. */
  | { oversize: number };

/** How a raw session starts: a valid `CONNECT`, a refused one, or none at all. */
export type AuthMode = "valid" | "noToken" | "garbageAuth" | "otherShape" | "skip";

/** One raw session: how it connects, then the frames it sends. */
export interface SessionSpec {
  auth: AuthMode;
  frames: FrameSpec[];
}

/** Ack id of the `presence:list` sent after the frames to prove the session (or the server) still answers. */
export const SENTINEL_ACK_ID = 987_654;

const LITERAL_FRAMES = [
  "",
  "0",
  "1",
  "2",
  "3",
  "5",
  "6",
  "7",
  "9",
  "2probe",
  "3probe",
  "4",
  "40",
  "41",
  "42",
  "43",
  "44",
  "45",
  "46",
  "47",
  "4x",
  "42[",
  "42[]",
  "42{}",
  '42"x"',
  "42[1]",
  "42[null]",
  '42["__proto__"]',
  '42["constructor",{}]',
  '42["toString"]',
  '42["hasOwnProperty",1]',
  '42["disconnect"]',
  '42["connect"]',
  '42["connect_error",{}]',
  '42["error",{"code":"X"}]',
  '42["newListener","x"]',
  '42["removeListener"]',
  '42["disconnecting"]',
  '421["disconnect"]',
  "431",
  "431[]",
  '431[{"ok":true}]',
  "4399999999999999999999[]",
  '4212345678901234567890123456789["presence:list",{}]',
  '42-1["presence:list",{}]',
  '42/admin,["x"]',
  "40/admin,",
  "40/admin,{}",
  "41/admin,",
  "41/,",
  '44{"message":"x"}',
  '40{"token":"garbage"}',
  '451-["chaos:echo",{"_placeholder":true,"num":0}]',
  '451-1["chaos:echo",{"_placeholder":true,"num":5}]',
  '451-2["chaos:echo",{"_placeholder":true,"num":-1}]',
  '451-3["chaos:echo",{"_placeholder":true,"num":"__proto__"}]',
  '452-["chaos:echo",{"_placeholder":true,"num":0}]',
  '4599999999-["chaos:echo"]',
  '45-1-["chaos:echo"]',
  '450-4["chaos:echo",{"a":1}]',
  '461-5[{"_placeholder":true,"num":0}]',
  '42["chaos:echo",{"_placeholder":true,"num":0}]',
  '421["document:get",{"type":"__proto__","id":"constructor"}]',
  '422["document:update",{"type":"p","id":"x","baseVersion":0,"changes":{"__proto__":{"polluted":true}}}]',
  '423["document:update",{"type":"p","id":"x","baseVersion":0,"changes":{"constructor":{"prototype":{"polluted":true}}}}]',
  '424["inbox:ack",{"ids":["1-1"]}]',
];

const eventName = fc.constantFrom(
  "document:get",
  "document:update",
  "document:history",
  "document:rollback",
  "inbox:ack",
  "presence:list",
  "auth:refresh",
  "chaos:echo",
  "chaos:unknown",
  "disconnect",
  "error",
  "__proto__",
);

const packetFrame: fc.Arbitrary<FrameSpec> = fc.record(
  {
    type: fc.oneof({ arbitrary: fc.constant("2" as const), weight: 4 }, { arbitrary: fc.constant("5" as const), weight: 1 }),
    event: eventName,
    args: fc.array(fc.oneof(anySpec, deepSpec, leafSpec), { maxLength: 3 }),
    id: fc.oneof(fc.nat({ max: 1000 }), fc.constant(2 ** 53)),
    nsp: fc.oneof({ arbitrary: fc.constant("/"), weight: 4 }, { arbitrary: fc.constantFrom("/admin", "/x,y"), weight: 1 }),
    attachments: fc.nat({ max: 3 }),
  },
  { requiredKeys: ["type", "event", "args", "nsp"] },
);

/**
 * A frame: built packets and known-dangerous literals, sometimes bytes, bad
 * UTF-8, deep or oversize text. Most malformed frames end the session, so
 * well-formed events to `/` are weighted up to keep some sessions alive
 * long enough for the frames after them.
 */
export const frameSpec: fc.Arbitrary<FrameSpec> = fc.oneof(
  { arbitrary: fc.constantFrom(...LITERAL_FRAMES).map((text) => ({ text })), weight: 4 },
  { arbitrary: packetFrame, weight: 8 },
  { arbitrary: fc.string({ unit: "binary", maxLength: 40 }).map((text) => ({ text: `4${text}` })), weight: 2 },
  { arbitrary: fc.array(fc.nat({ max: 255 }), { maxLength: 64 }).map((binary) => ({ binary })), weight: 2 },
  { arbitrary: fc.nat({ max: 16 }).map((invalidUtf8) => ({ invalidUtf8 })), weight: 1 },
  {
    arbitrary: fc.record({ deepText: fc.integer({ min: 1_000, max: 100_000 }), event: fc.constantFrom("chaos:echo", "document:update") }),
    weight: 1,
  },
  { arbitrary: fc.constantFrom(70_000, 300_000, 1_100_000).map((oversize) => ({ oversize })), weight: 1 },
);

export const sessionSpec: fc.Arbitrary<SessionSpec> = fc.record({
  auth: fc.oneof(
    { arbitrary: fc.constant<AuthMode>("valid"), weight: 6 },
    { arbitrary: fc.constantFrom<AuthMode>("noToken", "garbageAuth", "otherShape", "skip"), weight: 2 },
  ),
  frames: fc.array(frameSpec, { minLength: 1, maxLength: 6 }),
});

/** Builds a frame: a string for a text frame, a Buffer (with `binary` telling the opcode) otherwise. */
export function buildFrame(spec: FrameSpec, tokens: Partial<Record<TokenName, string>>): { data: string | Buffer; binary: boolean } {
  if ("text" in spec) return { data: spec.text, binary: false };
  if ("binary" in spec) return { data: Buffer.from(spec.binary), binary: true };
  if ("invalidUtf8" in spec) return { data: Buffer.concat([Buffer.from("42"), Buffer.alloc(spec.invalidUtf8 + 1, 0xff)]), binary: false };
  if ("deepText" in spec) {
    return { data: `42["${spec.event}",${"[".repeat(spec.deepText)}${"]".repeat(spec.deepText)}]`, binary: false };
  }
  if ("oversize" in spec) return { data: `42["chaos:echo","${"x".repeat(spec.oversize)}"]`, binary: false };
  const attachments = spec.type === "5" ? `${spec.attachments ?? 0}-` : "";
  const nsp = spec.nsp && spec.nsp !== "/" ? `${spec.nsp},` : "";
  const body = JSON.stringify([spec.event, ...spec.args.map((arg) => buildValue(arg, tokens))]);
  return { data: `4${spec.type}${attachments}${nsp}${spec.id ?? ""}${body}`, binary: false };
}
