import type { Project } from "../../src/catalog.js";
import { roleMay } from "../../src/policy.js";
import { companyTopic, mayFollowFeed, projectTopic } from "../../src/topics.js";
import type { ApiError } from "../api.js";
import type { DashboardContext } from "../context.js";
import { byId, flash, h, money, toast } from "../dom.js";
import { cachedGet } from "../offline-cache.js";
import { projectPageHash } from "./project-page.js";

/**
 * Projects with their budgets: the ones this user may see (a subcontractor,
 * only those they are assigned to). The panel subscribes to each project's
 * topic, where its changes arrive as `project:updated` and `project:deleted`,
 * including the spend an approved expense or a paid invoice adds; staff also
 * follow `company:projects` for `project:created`. A topic the server drops
 * takes its row away. A project's name opens its page (`project-page.ts`).
 *
 * @returns a promise that settles once the initial subscriptions are in place.
 */
export function mountProjects(context: DashboardContext): Promise<void> {
  const { client, api, session } = context;
  const body = byId<HTMLTableSectionElement>("projects");
  const shown = new Map<string, { row: HTMLTableRowElement; project: Project }>();
  const canEdit = roleMay(session.user.role, "project:edit");

  const show = (project: Project, highlight: boolean) => {
    const existing = shown.get(project.id);
    // A REST snapshot can arrive after a newer live update; keep the newer one.
    if (existing && existing.project.updatedAt > project.updatedAt) return;
    const row = existing?.row ?? body.appendChild(h("tr", { "data-project-id": project.id }));
    fillRow(row, project, existing?.project);
    shown.set(project.id, { row, project });
    if (highlight) flash(row);
  };

  const forget = (id: string) => {
    shown.get(id)?.row.remove();
    shown.delete(id);
  };

  const fillRow = (row: HTMLTableRowElement, project: Project, previous: Project | undefined) => {
    const share = project.budget > 0 ? project.spent / project.budget : 0;
    const bar = h("div", { class: share > 1 ? "bar over" : "bar", role: "progressbar", "aria-valuenow": Math.round(share * 100), "aria-label": `${project.name} spend` });
    bar.append(h("span", { style: `width: ${Math.min(100, share * 100).toFixed(1)}%` }));
    const cells = [
      h("td", {}, h("a", { href: projectPageHash(project.id), class: "project-link" }, project.name), h("span", { class: "sub" }, project.site)),
      h("td", {}, h("span", { class: `badge ${project.status}` }, project.status.replace("_", " "))),
      h("td", { class: "spend" }, bar, h("span", { class: "sub" }, `${money(project.spent)} of ${money(project.budget)} (${Math.round(share * 100)}%)`)),
    ];
    // Keep a budget the user is typing; only a changed budget replaces the input.
    const budgetCell = row.cells[3];
    if (budgetCell && previous?.budget === project.budget) cells.push(budgetCell);
    else cells.push(h("td", { class: "budget" }, canEdit ? budgetForm(project) : money(project.budget)));
    row.replaceChildren(...cells);
  };

  const budgetForm = (project: Project) => {
    const input = h("input", { type: "number", min: 0, step: 1000, value: project.budget, name: "budget", "aria-label": `Budget of ${project.name}` });
    const form = h("form", { class: "budget-input" }, input, h("button", { type: "submit", class: "small" }, "Save"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      api<Project>(`/projects/${project.id}`, { method: "PATCH", body: { budget: Number(input.value) } }).then(
        (updated) => show(updated, true),
        (error: ApiError) => toast(error.message),
      );
    });
    return form;
  };

  /** Subscribes to a project's topic; the row says when it is live. */
  const follow = (projectId: string) =>
    client.subscribe(projectTopic(projectId)).then(
      () => shown.get(projectId)?.row.setAttribute("data-live", "true"),
      (error: Error) => toast(`No live updates for project ${projectId}: ${error.message}`),
    );

  client.on("project:created", (project) => {
    show(project, true);
    void follow(project.id);
  });
  client.on("project:updated", (project) => show(project, true));
  client.on("project:deleted", ({ id }) => {
    forget(id);
    void client.unsubscribe(projectTopic(id));
  });
  client.onDropped((drop) => {
    // The user may no longer see the project: it leaves the table.
    if (drop.kind === "topic" && drop.topic.startsWith("project:")) forget(drop.topic.slice("project:".length));
  });

  // Updates of a project (or the company's project feed) were missed and cannot be replayed: load the list again.
  client.onResync(({ stream }) => {
    if (!stream.startsWith("topic:project:") && stream !== `topic:${companyTopic("projects")}`) return;
    void api<Project[]>("/projects").then((projects) => projects.forEach((project) => show(project, false)));
  });

  const feeds = mayFollowFeed(session.user.role, "projects") ? [client.subscribe(companyTopic("projects"))] : [];
  // Offline, the list this browser cached shows at once; the server's replaces it once reachable.
  let following: Promise<unknown> = Promise.resolve();
  return cachedGet<Project[]>(context, "/projects", (projects, cached) => {
    if (!cached) for (const id of shown.keys()) if (!projects.some((project) => project.id === id)) forget(id);
    projects.forEach((project) => show(project, false));
    // Subscribing again is harmless; a project new in the server's list gets its topic too.
    following = Promise.all(projects.map((project) => follow(project.id)));
  }).then(async () => {
    await Promise.all([...feeds, following]);
    body.dataset.live = "true";
  });
}
