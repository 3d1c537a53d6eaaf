/** Progress lines on stderr, so stdout carries only the result table. */
const startedAt = Date.now();

export function progress(...parts) {
  const elapsed = ((Date.now() - startedAt) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[${elapsed}s] ${parts.filter((part) => part !== undefined && part !== "").join(" · ")}\n`);
}

/** Seconds since the run started. */
export const elapsedSeconds = () => (Date.now() - startedAt) / 1000;
