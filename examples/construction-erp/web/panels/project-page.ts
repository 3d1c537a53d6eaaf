import type { Project } from "../../src/catalog.js";
import { projectTopic } from "../../src/topics.js";
import type { DashboardContext } from "../context.js";
import { byId, money, toast } from "../dom.js";
import { trackViewers } from "./viewers.js";

/** The address of a project's page: `#project=p-riverside`. */
export const projectPageHash = (projectId: string): string => `#project=${encodeURIComponent(projectId)}`;

/**
 * One project's page, opened from its row in the projects table (the
 * address's `#project=…`, so a reload keeps it): its figures, live from the
 * project's topic, and who else is viewing it, from the topic's scoped
 * presence (`client.presence.in({ topic })`). The server's policy decides
 * who may subscribe to the topic and use its presence, so a project hidden
 * from this user shows no page and nobody on it.
 */
export function mountProjectPage(context: DashboardContext): void {
  const { client, api } = context;
  const card = byId("project-page");
  const title = byId("project-page-title");
  const summary = byId("project-page-summary");
  const viewers = trackViewers(context, byId("project-viewers"));
  let projectId: string | null = null;

  const show = (project: Project) => {
    title.textContent = project.name;
    summary.textContent = `${project.site} · ${project.status.replace("_", " ")} · ${money(project.spent)} spent of ${money(project.budget)}`;
  };

  const close = () => {
    viewers.leave();
    projectId = null;
    card.hidden = true;
    delete card.dataset.projectId;
    delete card.dataset.ready;
  };

  const open = async (id: string) => {
    if (id === projectId) return;
    close();
    projectId = id;
    card.hidden = false;
    card.dataset.projectId = id;
    title.textContent = id;
    summary.textContent = "";
    // Its figures are a nicety next to who is here: without an answer the page shows the project's id.
    void api<Project>(`/projects/${encodeURIComponent(id)}`).then(
      (project) => projectId === id && show(project),
      () => undefined,
    );
    // The projects panel follows the topic already; subscribing again only waits for it, and is refused for a project this user may not see.
    await client.subscribe(projectTopic(id));
    if (projectId !== id) return;
    viewers.enter({ topic: projectTopic(id) }, { field: null });
    card.dataset.ready = "true";
  };

  /** Back to the table: the address loses its `#project=…`. */
  const leavePage = () => {
    history.replaceState(null, "", location.pathname);
    close();
  };

  const follow = () => {
    const match = /^#project=(.+)$/.exec(location.hash);
    if (!match) return close();
    const id = decodeURIComponent(match[1]!);
    open(id).catch((error: Error) => {
      if (projectId !== id) return;
      // A project this user may not see, or that is gone: back to the table.
      leavePage();
      toast(`Could not open project ${id}: ${error.message}`);
    });
  };

  client.on("project:updated", (project) => {
    if (project.id === projectId) show(project);
  });
  client.on("project:deleted", ({ id }) => {
    if (id === projectId) leavePage();
  });
  client.onDropped((drop) => {
    if (drop.kind === "topic" && projectId !== null && drop.topic === projectTopic(projectId)) leavePage();
  });
  byId("project-page-close").addEventListener("click", leavePage);
  window.addEventListener("hashchange", follow);
  follow();
}
