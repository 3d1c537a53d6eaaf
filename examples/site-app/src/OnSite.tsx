import { usePresence } from "@truss/react";

/** Who else has today's report open, and who in the company is online at all. */
export function OnSite({ reportId }: { reportId: string }) {
  const { users } = usePresence();
  const { others } = usePresence({ type: "site-report", id: reportId }, { viewing: true });
  const here = [...new Set(others.map((member) => member.userId))];
  return (
    <section className="card" id="on-site">
      <h2>On site</h2>
      <p>{here.length === 0 ? "Nobody else has this report open." : `Also in this report: ${here.join(", ")}`}</p>
      <p className="muted">{users === null ? "…" : `${users.length} online in the company`}</p>
    </section>
  );
}
