import type { Expense, Project } from "../../src/catalog.js";
import { roleMay } from "../../src/policy.js";
import type { ApiError } from "../api.js";
import type { DashboardContext } from "../context.js";
import { byId, flash, h, money, toast } from "../dom.js";

/**
 * Expenses and their approval. Managers approve or reject pending ones; the
 * submitter hears the decision through their inbox (`expense:approved`,
 * `expense:rejected`), on every device, even one that was offline. The list
 * is what the server lets this user see: a subcontractor, only their own.
 */
export function mountExpenses({ client, api, session, directory }: DashboardContext): void {
  const list = byId<HTMLUListElement>("expenses");
  const form = byId<HTMLFormElement>("expense-form");
  const projectSelect = form.elements.namedItem("projectId") as HTMLSelectElement;
  const mayDecide = roleMay(session.user.role, "expense:decide");
  const expenses = new Map<string, Expense>();
  const projectNames = new Map<string, string>();

  const render = (changedId?: string) => {
    const sorted = [...expenses.values()].sort((a, b) => b.createdAt - a.createdAt);
    if (sorted.length === 0) {
      list.replaceChildren(h("li", { class: "empty" }, "No expenses."));
      return;
    }
    list.replaceChildren(
      ...sorted.map((expense) => {
        const canDecide = mayDecide && expense.status === "pending" && expense.submittedBy !== session.user.id;
        const item = h(
          "li",
          { "data-expense-id": expense.id, "data-status": expense.status },
          h("div", {}, h("strong", {}, expense.description), h("div", { class: "muted" }, `${directory.nameOf(expense.submittedBy)} · ${projectNames.get(expense.projectId) ?? expense.projectId}`)),
          h("div", {}, money(expense.amount), " ", h("span", { class: `badge ${expense.status}` }, expense.status)),
          canDecide ? h("div", { class: "actions" }, decideButton(expense, "approve"), decideButton(expense, "reject")) : null,
        );
        if (expense.id === changedId) flash(item);
        return item;
      }),
    );
  };

  const decideButton = (expense: Expense, action: "approve" | "reject") => {
    const button = h("button", { type: "button", class: action === "approve" ? "small approve" : "small ghost reject" }, action === "approve" ? "Approve" : "Reject");
    button.addEventListener("click", () => {
      button.disabled = true;
      api<Expense>(`/expenses/${expense.id}/${action}`, { body: {} }).then(
        (decided) => upsert(decided),
        (error: ApiError) => {
          toast(error.message);
          void reload();
        },
      );
    });
    return button;
  };

  const upsert = (expense: Expense) => {
    expenses.set(expense.id, expense);
    render(expense.id);
  };

  const reload = async () => {
    const fresh = await api<Expense[]>("/expenses");
    expenses.clear();
    for (const expense of fresh) expenses.set(expense.id, expense);
    render();
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    api<Expense>("/expenses", { body: { projectId: data.get("projectId"), description: data.get("description"), amount: Number(data.get("amount")) } }).then(
      (created) => {
        form.reset();
        upsert(created);
      },
      (error: ApiError) => toast(error.message),
    );
  });

  // Decisions come to the submitter; a manager learns of new submissions by notification.
  client.on("expense:approved", upsert);
  client.on("expense:rejected", upsert);
  client.on("notification:new", (notification) => {
    if (notification.kind === "expense" && mayDecide) void reload();
  });
  directory.onChange(() => render());
  void api<Project[]>("/projects").then((projects) => {
    projectSelect.replaceChildren(...projects.map((project) => h("option", { value: project.id }, project.name)));
    for (const project of projects) projectNames.set(project.id, project.name);
    return reload();
  });
}
