import { waitFor } from "./engine.js";

// Listening servers, sockets and timers: what keeps a process alive after it should have exited.
const WATCHED = ["TCPServerWrap", "TCPSocketWrap", "Timeout"] as const;

/** How many of each watched handle type this process holds now. */
export function handleCounts(): Record<(typeof WATCHED)[number], number> {
  const active = process.getActiveResourcesInfo();
  return Object.fromEntries(WATCHED.map((type) => [type, active.filter((name) => name === type).length])) as Record<(typeof WATCHED)[number], number>;
}

/** Waits until no watched handle type has more instances than in `before`; fails naming the leftovers. */
export async function expectNoNewHandles(before: Record<(typeof WATCHED)[number], number>, timeoutMs = 3000): Promise<void> {
  const leftovers = () => WATCHED.filter((type) => handleCounts()[type] > before[type]);
  await waitFor(() => leftovers().length === 0, {
    timeoutMs,
    message: `handles to be released (before: ${JSON.stringify(before)}, now: ${JSON.stringify(handleCounts())})`,
  }).catch(() => {
    throw new Error(`open handles left after close: ${leftovers().join(", ")} (before ${JSON.stringify(before)}, after ${JSON.stringify(handleCounts())})`);
  });
}
