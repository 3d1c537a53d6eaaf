/**
 * What the misbehaving-dependency matrices share (`hostile-*.test.ts`): the
 * ways a store, a callback or a listener can misbehave, a record of what went
 * unhandled in this process, and checks that each answer a client or the
 * application got was coded.
 */
import type { Socket as ClientSocket } from "socket.io-client";
import { TrussError, type RealtimeEngine } from "@truss/core";
import { ERROR_CODES, type InboxMessage } from "@truss/protocol";
import { collect, createClient, request, sleep, waitFor } from "./engine.js";
import type { TestClaims } from "./tokens.js";

/** How a store method, a callback or a listener misbehaves. */
export type Misbehaviour = "throws" | "throws-null" | "rejects" | "null" | "empty" | "booby-trapped" | "throwing-thenable" | "promise-of-garbage" | "hangs";

/** Every {@link Misbehaviour} but `hangs`, which a matrix adds where the engine bounds the wait (a store call, `authorize`). */
export const MISBEHAVIOURS: readonly Misbehaviour[] = ["throws", "throws-null", "rejects", "null", "empty", "booby-trapped", "throwing-thenable", "promise-of-garbage"];

/** What a callback misbehaving as `how` returns, or throws; `where` names it in the errors. */
export function misbehave(how: Misbehaviour, where: string): any {
  switch (how) {
    case "throws":
      // Synchronously, before any promise: a bug at the top of a function.
      throw new TypeError(`hostile: ${where} threw`);
    case "throws-null":
      throw null;
    case "rejects":
      // Not an Error: no message, no stack, no code.
      return Promise.reject(undefined);
    case "null":
      return null;
    case "empty":
      // An object without any of the fields a contract names.
      return {};
    case "booby-trapped":
      // Not a thenable, but every other read throws.
      return new Proxy(
        {},
        {
          get(_, property) {
            if (property === "then") return undefined;
            throw new Error(`hostile: the answer of ${where} was read (${String(property)})`);
          },
        },
      );
    case "throwing-thenable":
      // Awaiting it reads `then`, which throws.
      return Object.defineProperty({}, "then", {
        get() {
          throw new Error(`hostile: the answer of ${where} has a throwing then`);
        },
      });
    case "promise-of-garbage":
      // Fields many contracts name, each of the wrong type.
      return Promise.resolve({ userId: 42, companyId: ["acme"], roles: "admin", outcome: "merged", data: 7, issues: "many", value: Symbol("v"), epoch: 7, offset: "x", length: -1 });
    case "hangs":
      // A pool with no free connection and no acquire timeout, a command queued while the server is away: no answer, ever.
      return new Promise(() => {});
  }
}

/** What went unhandled in this process since {@link UnhandledRecord.take} last ran. */
export interface UnhandledRecord {
  /** Empties the record and returns what it held. */
  take(): string[];
  /** Stops recording. */
  stop(): void;
}

/** Records unhandled rejections and uncaught exceptions (each would end a Node.js process by default). */
export function recordUnhandled(): UnhandledRecord {
  let seen: string[] = [];
  const onRejection = (reason: unknown) => void seen.push(`unhandled rejection: ${reason instanceof Error ? reason.stack : String(reason)}`);
  const onException = (error: Error) => void seen.push(`uncaught exception: ${error.stack}`);
  process.on("unhandledRejection", onRejection);
  process.on("uncaughtException", onException);
  return {
    take: () => {
      const taken = seen;
      seen = [];
      return taken;
    },
    stop: () => {
      process.off("unhandledRejection", onRejection);
      process.off("uncaughtException", onException);
    },
  };
}

const KNOWN_CODES = new Set<string>(ERROR_CODES);

/** How long a connection, a request or a server API call may take to be answered before the matrices note a problem. */
const ANSWER_WITHIN_MS = 3000;

/** Opens `socket`; resolves with it, or with `null` after a refusal, which must carry a known code and come within 3 s (else a problem is noted). */
export async function connectedOrRefused(socket: ClientSocket, who: string, problems: string[]): Promise<ClientSocket | null> {
  let timer: NodeJS.Timeout | undefined;
  const outcome = await new Promise<{ ok: true } | { ok: false; error: any } | { ok: false; silent: true }>((resolve) => {
    socket.once("connect", () => resolve({ ok: true }));
    socket.once("connect_error", (error: any) => resolve({ ok: false, error }));
    timer = setTimeout(() => resolve({ ok: false, silent: true }), ANSWER_WITHIN_MS);
    socket.connect();
  });
  clearTimeout(timer);
  if (outcome.ok) return socket;
  if ("silent" in outcome) {
    problems.push(`${who} was neither admitted nor refused within ${ANSWER_WITHIN_MS} ms`);
    socket.close();
    return null;
  }
  if (!KNOWN_CODES.has(outcome.error?.data?.code)) problems.push(`${who} was refused without a known code: ${JSON.stringify(outcome.error?.data ?? outcome.error?.message)}`);
  return null;
}

/** Sends a protocol request; the answer must come within 3 s and be `ok` or carry a known code (else a problem is noted). */
export async function askCoded(socket: ClientSocket, event: string, payload: unknown, problems: string[]): Promise<any> {
  let answer: any;
  try {
    answer = await request(socket, event, payload, ANSWER_WITHIN_MS);
  } catch {
    problems.push(`${event}: no answer within ${ANSWER_WITHIN_MS} ms`);
    return null;
  }
  if (answer?.ok !== true && !KNOWN_CODES.has(answer?.error?.code)) problems.push(`${event}: answered ${JSON.stringify(answer)}`);
  return answer;
}

/** Calls the server API; within 3 s it must resolve, or reject with a TrussError of a known code (else a problem is noted). */
export async function callCoded(what: string, run: () => Promise<unknown>, problems: string[]): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const silent = Symbol("silent");
  try {
    const outcome = await Promise.race([run(), new Promise((resolve) => (timer = setTimeout(resolve, ANSWER_WITHIN_MS, silent)))]);
    if (outcome === silent) problems.push(`${what}: neither resolved nor rejected within ${ANSWER_WITHIN_MS} ms`);
  } catch (error) {
    if (!(error instanceof TrussError) || !KNOWN_CODES.has(error.code)) problems.push(`${what}: rejected with ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `run` once for each way of misbehaving, each with its own list of
 * problems, to which what went unhandled during it is added; answers one
 * failure (the way, then its problems) for each way that had any.
 */
export async function eachMisbehaviour(ways: readonly Misbehaviour[], unhandled: UnhandledRecord, run: (how: Misbehaviour, problems: string[]) => Promise<void>): Promise<string[]> {
  const failures: string[] = [];
  for (const how of ways) {
    unhandled.take();
    const problems: string[] = [];
    await run(how, problems);
    // What the case started in the background (a rejection, a timer) has its turn before the record is read.
    await sleep(30);
    problems.push(...unhandled.take());
    if (problems.length > 0) failures.push(`${how}:\n  ${problems.join("\n  ")}`);
  }
  return failures;
}

/**
 * With the misbehaving piece behaving again, the engine serves as before: a
 * new device of `claims` connects, gets a message live and commits an update
 * to `document`; `more` checks anything else on the same socket. Answers the
 * problems found.
 */
export async function servesAgain(
  server: { url: string; engine: RealtimeEngine<any> },
  claims: TestClaims & { userId: string; companyId: string },
  document: { type: string; id: string },
  more?: (socket: ClientSocket, problems: string[]) => Promise<void>,
): Promise<string[]> {
  const problems: string[] = [];
  const socket = await connectedOrRefused(createClient(server.url, { ...claims, deviceId: `again-${Math.random().toString(36).slice(2)}` }), claims.userId, problems);
  if (!socket) return [...problems, "a device could not connect once the piece behaved again"];
  try {
    const messages = collect<InboxMessage>(socket, "inbox:message");
    const sent = await server.engine.toUser(claims.companyId, claims.userId).emit("expense:approved", { id: "again" });
    await waitFor(() => messages.some((message) => message.id === sent.id), { timeoutMs: 3000, message: "the message live" }).catch(() =>
      problems.push("a message sent once the piece behaved again did not arrive live"),
    );
    const current = await request(socket, "document:get", document, 3000);
    const update = await request(socket, "document:update", { ...document, baseVersion: current?.document?.version ?? 0, changes: { again: Date.now() } }, 3000);
    if (update?.ok !== true) problems.push(`a document update once the piece behaved again answered ${JSON.stringify(update)}`);
    await more?.(socket, problems);
  } finally {
    socket.close();
  }
  return problems;
}
