import { createRequire } from "node:module";
import type { RedisClient } from "@truss/redis";

/**
 * `ws` and `ioredis` are not dependencies of the workspace root, and this
 * suite may not add any. Both are installed for the packages that use them:
 * `ws` under `engine.io-client` (through the root's `socket.io-client`),
 * `ioredis` under `@truss/redis`. They are loaded from there, so the suite
 * runs against the very copies the engine and its clients run on.
 */
const fromRoot = createRequire(import.meta.url);
const fromEngineIoClient = createRequire(createRequire(fromRoot.resolve("socket.io-client")).resolve("engine.io-client"));
const fromRedisPackage = createRequire(new URL("../../../packages/redis/package.json", import.meta.url));

/** The parts of a `ws` WebSocket the raw sessions use. */
export interface RawWebSocket {
  readonly readyState: number;
  send(data: string | Buffer, options?: { binary?: boolean }, callback?: (error?: Error) => void): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  on(event: "open", listener: () => void): this;
  on(event: "message", listener: (data: Buffer, isBinary: boolean) => void): this;
  on(event: "close", listener: (code: number, reason: Buffer) => void): this;
  on(event: "error", listener: (error: Error) => void): this;
}

/** `ws`'s WebSocket constructor. */
export const WebSocket = fromEngineIoClient("ws").WebSocket as new (
  url: string,
  options?: { perMessageDeflate?: boolean; maxPayload?: number; handshakeTimeout?: number },
) => RawWebSocket;

/** ioredis's `Redis` constructor, typed as the client `@truss/redis` takes. */
export const Redis = fromRedisPackage("ioredis").Redis as new (url: string, options?: Record<string, unknown>) => RedisClient & {
  duplicate(): RedisClient;
  connect(): Promise<void>;
  disconnect(): void;
};
