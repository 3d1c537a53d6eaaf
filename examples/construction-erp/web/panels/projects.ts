import type { Project } from "../../src/catalog.js";
import type { ApiError } from "../api.js";
import type { DashboardContext } from "../context.js";
import { byId, flash, h, money, toast } from "../dom.js";

/**
 * Projects with their budgets. Every change in the company arrives as
 * `project:created`, `project:updated` or `project:deleted`, including the
 * spend that an approved expense or a paid invoice adds.
 */
export function mountProjects({ client, api }: DashboardContext): void {
  const body = byId<HTMLTableSectionElement>("projects");
  const shown = new Map<string, { row: HTMLTableRowElement; project: Project }>();

  const show = (project: Project, highlight: boolean) => {
    const existing = shown.get(project.id);
    // A REST snapshot can arrive after a newer live update; keep the newer one.
    if (existing && existing.project.updatedAt > project.updatedAt) return;
    const row = existing?.row ?? body.appendChild(h("tr", { "data-project-id": project.id }));
    fillRow(row, project, existing?.project);
    shown.set(project.id, { row, project });
    if (highlight) flash(row);
  };

  const fillRow = (row: HTMLTableRowElement, project: Project, previous: Project | undefined) => {
    const share = project.budget > 0 ? project.spent / project.budget : 0;
    const bar = h("div", { class: share > 1 ? "bar over" : "bar", role: "progressbar", "aria-valuenow": Math.round(share * 100), "aria-label": `${project.name} spend` });
    bar.append(h("span", { style: `width: ${Math.min(100, share * 100).toFixed(1)}%` }));
    const cells = [
      h("td", {}, project.name, h("span", { class: "sub" }, project.site)),
      h("td", {}, h("span", { class: `badge ${project.status}` }, project.status.replace("_", " "))),
      h("td", { class: "spend" }, bar, h("span", { class: "sub" }, `${money(project.spent)} of ${money(project.budget)} (${Math.round(share * 100)}%)`)),
    ];
    // Keep a budget the user is typing; only a changed budget replaces the input.
    const budgetCell = row.cells[3];
    if (budgetCell && previous?.budget === project.budget) cells.push(budgetCell);
    else cells.push(h("td", {}, budgetForm(project)));
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

  client.on("project:created", (project) => show(project, true));
  client.on("project:updated", (project) => show(project, true));
  client.on("project:deleted", ({ id }) => {
    shown.get(id)?.row.remove();
    shown.delete(id);
  });
  void api<Project[]>("/projects").then((projects) => projects.forEach((project) => show(project, false)));
}
