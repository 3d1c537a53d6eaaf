import { readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { CONNECTION_ACTIONS, ERROR_ACTIONS, ERROR_CODES, errorAction, isRetryable, SESSION_ENDING_CODES, SUSPECT_RETRY_CODES, type ErrorAction, type ErrorCode } from "@truss/protocol";

const ACTIONS: readonly ErrorAction[] = ["retry", "renew-token", "resync", "reject", "stop"];

test("every error code says what a client does about it, and the table names no other code", () => {
  for (const code of ERROR_CODES) expect(ACTIONS, code).toContain(errorAction(code));
  expect(Object.keys(ERROR_ACTIONS).sort()).toEqual([...ERROR_CODES].sort());
});

test("every action says what it means for the connection: reconnect, reconnect with a new token, or stop", () => {
  expect(Object.keys(CONNECTION_ACTIONS).sort()).toEqual([...ACTIONS].sort());
  for (const action of ACTIONS) expect(["retry", "renew-token", "stop"]).toContain(CONNECTION_ACTIONS[action]);
  // A request worth sending again is exactly one whose connection is worth trying again.
  for (const action of ACTIONS) expect(isRetryable(action), action).toBe(CONNECTION_ACTIONS[action] !== "stop");
});

test("the codes a handshake is refused or a session ended with keep the reconnection they have always had", () => {
  const onConnection = (code: ErrorCode) => CONNECTION_ACTIONS[errorAction(code)];
  const expected: Partial<Record<ErrorCode, string>> = {
    AUTH_MISSING_TOKEN: "renew-token",
    AUTH_INVALID_TOKEN: "renew-token",
    AUTH_TOKEN_EXPIRED: "renew-token",
    AUTH_TOKEN_NOT_YET_VALID: "retry",
    AUTH_WRONG_ALGORITHM: "stop",
    AUTH_WRONG_ISSUER: "stop",
    AUTH_WRONG_AUDIENCE: "stop",
    AUTH_MISSING_CLAIMS: "stop",
    AUTH_PRINCIPAL_MISMATCH: "stop",
    ORIGIN_NOT_ALLOWED: "stop",
    RATE_LIMITED: "retry",
    SLOW_CONSUMER: "retry",
    TOO_MANY_DEVICES: "retry",
    TOO_MANY_CONNECTIONS: "retry",
    STORE_UNAVAILABLE: "retry",
    SERVER_SHUTTING_DOWN: "retry",
    INTERNAL_ERROR: "retry",
    ACCESS_REVOKED: "stop",
    // Refuses one request, but ends the session when `engine.disconnectUser` sends it.
    FORBIDDEN: "stop",
  };
  for (const [code, action] of Object.entries(expected)) expect(onConnection(code as ErrorCode), code).toBe(action);
  expect(errorAction("FORBIDDEN")).toBe("reject");
});

test("session-ending codes are error codes, each once", () => {
  for (const code of SESSION_ENDING_CODES) expect(ERROR_CODES).toContain(code);
  expect(new Set(SESSION_ENDING_CODES).size).toBe(SESSION_ENDING_CODES.length);
});

test("the README's table of actions lists every code under the action the table gives it", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const listed = new Map<string, string>();
  for (const [, action, codes] of readme.matchAll(/^\| `([a-z-]+)` \| ((?:`[A-Z_]+`(?:, )?)+) \|/gm)) {
    for (const [, code] of codes!.matchAll(/`([A-Z_]+)`/g)) listed.set(code!, action!);
  }
  expect(Object.fromEntries([...listed].sort())).toEqual(Object.fromEntries(Object.entries(ERROR_ACTIONS).sort()));
});

test("a suspect retry code is one a client retries, and a store down is not one: an outbox waits it out", () => {
  for (const code of SUSPECT_RETRY_CODES) expect(ERROR_ACTIONS[code]).toBe("retry");
  expect(SUSPECT_RETRY_CODES).not.toContain("STORE_UNAVAILABLE");
  expect(SUSPECT_RETRY_CODES).not.toContain("RATE_LIMITED");
});
