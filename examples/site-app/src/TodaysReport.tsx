import { useEffect, useState } from "react";
import { useDocument, useOutbox } from "@truss/react";

/** The fields of the ERP's site report a phone edits. */
interface SiteReport {
  title?: string;
  weather?: string;
  progress?: string;
  notes?: string;
  [field: string]: unknown;
}

const FIELDS = ["weather", "progress", "notes"] as const;
type Field = (typeof FIELDS)[number];

/**
 * Today's site report: shown as the client holds it (or, opened without
 * signal, as this phone saw it last), edited in a draft, and saved through
 * the outbox, so a save without signal waits on the phone, survives a
 * reload, and commits once when the signal is back. A change someone else
 * made to the same field meanwhile is shown, not overwritten.
 */
export function TodaysReport({ reportId, title }: { reportId: string; title: string }) {
  const live = useDocument<SiteReport>("site-report", reportId);
  const { status, update, conflicts } = live;
  // Opened without signal, the page shows (and edits) the version this phone saw last.
  const cacheKey = `site:report:${reportId}`;
  useEffect(() => {
    if (live.document && live.version) localStorage.setItem(cacheKey, JSON.stringify({ version: live.version, data: live.document }));
  }, [cacheKey, live.document, live.version]);
  const shown = live.document ? { version: live.version!, data: live.document } : status === "loading" ? cachedReport(cacheKey) : null;
  const document = shown?.data ?? null;
  const version = shown?.version ?? null;
  // Saves not committed yet (made offline, or on their way) show over the version held, marked as waiting.
  const { pending } = useOutbox();
  const waiting: SiteReport = Object.assign(
    {},
    ...pending.map((write) => (write.kind === "document" && write.type === "site-report" && write.id === reportId ? write.changes : {})),
  );
  const [draft, setDraft] = useState<Partial<Record<Field, string>>>({});
  const changed = Object.keys(draft).length > 0;
  const save = () => {
    const changes = draft;
    setDraft({});
    // Based on the version the form showed, so someone else's change since is a conflict rather than overwritten.
    // Resolves once the server committed it, which offline means after the next reconnection.
    void update(changes, version === null ? {} : { baseVersion: version }).catch(() => setDraft((current) => ({ ...changes, ...current })));
  };
  return (
    <section className="card" id="report" data-status={status} data-source={live.document ? "live" : shown ? "cache" : "none"} data-version={version ?? ""}>
      <h2>{document?.title ?? title}</h2>
      {status === "loading" && <p className="muted">{shown ? "Offline: the version this phone saw last. Saves wait until the signal is back." : "Loading the report…"}</p>}
      {(status === "refused" || status === "dropped") && <p role="alert">This report is not available to you.</p>}
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (changed) save();
        }}
      >
        {FIELDS.map((field) => (
          <label key={field}>
            <span>{field}</span>
            <textarea
              name={field}
              rows={field === "weather" ? 1 : 3}
              className={field in waiting ? "waiting" : undefined}
              value={draft[field] ?? String(waiting[field] ?? document?.[field] ?? "")}
              onChange={(event) => setDraft((current) => ({ ...current, [field]: event.target.value }))}
            />
          </label>
        ))}
        {conflicts.length > 0 && (
          <div className="conflict" role="alert">
            Someone else changed {conflicts.map((conflict) => conflict.field).join(", ")} meanwhile; their version is shown. Edit and save again to
            replace it.
          </div>
        )}
        <button type="submit" disabled={!changed || (status === "loading" && !shown)}>
          Save
        </button>
        <span className="muted"> {version ? `version ${version}` : ""}</span>
      </form>
    </section>
  );
}

/** The version of a report this phone saw last, kept for opening the app without signal. */
function cachedReport(key: string): { version: number; data: SiteReport } | null {
  try {
    return JSON.parse(localStorage.getItem(key) ?? "null") as { version: number; data: SiteReport } | null;
  } catch {
    return null;
  }
}
