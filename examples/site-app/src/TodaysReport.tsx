import { useState } from "react";
import { useDocument } from "@truss/react";

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
 * Today's site report: shown as the client holds it, edited in a draft, and
 * saved through the outbox, so a save without signal waits on the phone and
 * commits once when it is back. A change someone else made to the same field
 * meanwhile is shown, not overwritten.
 */
export function TodaysReport({ reportId, title }: { reportId: string; title: string }) {
  const { document, version, status, update, conflicts } = useDocument<SiteReport>("site-report", reportId);
  const [draft, setDraft] = useState<Partial<Record<Field, string>>>({});
  const changed = Object.keys(draft).length > 0;
  const save = () => {
    const changes = draft;
    setDraft({});
    // Resolves once the server committed it, which offline means after the next reconnection.
    void update(changes).catch(() => setDraft((current) => ({ ...changes, ...current })));
  };
  return (
    <section className="card" id="report" data-status={status} data-version={version ?? ""}>
      <h2>{document?.title ?? title}</h2>
      {status === "loading" && <p className="muted">Loading the report… (saves still work offline)</p>}
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
              value={draft[field] ?? String(document?.[field] ?? "")}
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
        <button type="submit" disabled={!changed}>
          Save
        </button>
        <span className="muted"> {version ? `version ${version}` : ""}</span>
      </form>
    </section>
  );
}
