import { useState } from "react";
import type { Project } from "@truss/example-construction-erp/catalog";
import { useTopic } from "@truss/react";

/** The project's feed: its changes as they happen (budget, spend, status), newest first. */
export function ProjectFeed({ projectId }: { projectId: string }) {
  const [items, setItems] = useState<Array<{ key: number; text: string }>>([]);
  const feed = useTopic(`project:${projectId}`, {
    "project:updated": (project: Project) =>
      setItems((current) => [{ key: Date.now() + Math.random(), text: `${project.name}: ${project.status}, spent ${project.spent.toLocaleString()} of ${project.budget.toLocaleString()}` }, ...current].slice(0, 20)),
  });
  return (
    <section className="card" id="feed" data-status={feed.status}>
      <h2>Project feed</h2>
      {feed.status === "refused" && <p role="alert">You are not on this project ({feed.error.code}).</p>}
      {feed.status === "dropped" && <p role="alert">You were taken off this project.</p>}
      {items.length === 0 ? <p className="muted">Changes to the project show up here.</p> : null}
      <ul>
        {items.map((item) => (
          <li key={item.key}>{item.text}</li>
        ))}
      </ul>
    </section>
  );
}
