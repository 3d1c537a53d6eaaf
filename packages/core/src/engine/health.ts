import type { EngineStores } from "./options.js";
import { messageOf } from "../kernel/errors.js";

/** Whether one store answered its ping. */
export interface StoreHealth {
  /** `up`: answered (or has no ping); `down`: failed or timed out. */
  state: "up" | "down";
  /** Why it is down. */
  error?: string;
}

/** The engine's health, as served on `GET /health/websocket` by the framework adapters. */
export interface HealthReport {
  /** `ok`; `degraded` when a store is down; `closing` during shutdown. */
  status: "ok" | "degraded" | "closing";
  /** This node's id. */
  nodeId: string;
  /** Sockets connected to this node. */
  connections: number;
  /** Milliseconds since the engine was created. */
  uptimeMs: number;
  /** Each store's state. */
  stores: Record<keyof EngineStores, StoreHealth>;
}

/** How long a store may take to answer a health ping. */
const PING_TIMEOUT_MS = 1000;

/** Pings every store (in parallel, each bounded by a timeout) and builds the report. */
export async function checkHealth(
  stores: EngineStores,
  node: { nodeId: string; connections: number; uptimeMs: number; closing: boolean },
): Promise<HealthReport> {
  const names = Object.keys(stores) as Array<keyof EngineStores>;
  const states = await Promise.all(names.map((name) => ping(stores[name].ping?.bind(stores[name]))));
  const report = Object.fromEntries(names.map((name, i) => [name, states[i]!])) as HealthReport["stores"];
  const down = states.some((state) => state.state === "down");
  return {
    status: node.closing ? "closing" : down ? "degraded" : "ok",
    nodeId: node.nodeId,
    connections: node.connections,
    uptimeMs: node.uptimeMs,
    stores: report,
  };
}

async function ping(call: (() => Promise<void>) | undefined): Promise<StoreHealth> {
  if (!call) return { state: "up" };
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      call(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${PING_TIMEOUT_MS} ms`)), PING_TIMEOUT_MS);
      }),
    ]);
    return { state: "up" };
  } catch (error) {
    return { state: "down", error: messageOf(error) };
  } finally {
    clearTimeout(timer);
  }
}
