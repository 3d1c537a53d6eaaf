import { useSync } from "@truss/react";

/** "in sync", "syncing…" or "offline · 2 changes waiting": what someone on a flaky network needs to trust the app. */
export function SyncBar() {
  const { status, pendingWrites, recovering, inSync } = useSync();
  const state = inSync ? "in-sync" : status === "connected" ? "syncing" : "offline";
  const waiting = pendingWrites === 1 ? "1 change waiting" : `${pendingWrites} changes waiting`;
  const text = inSync ? "in sync" : status === "connected" ? (recovering ? "catching up…" : "syncing…") : pendingWrites > 0 ? `offline · ${waiting}` : "offline";
  return (
    <p id="sync" className={`sync ${state}`} data-sync={state} role="status">
      {text}
    </p>
  );
}
