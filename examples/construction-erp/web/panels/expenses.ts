import type { PendingEventWrite } from "@truss/client";
import type { Expense, ExpenseSubmission, Project } from "../../src/catalog.js";
import { roleMay } from "../../src/policy.js";
import type { ApiError } from "../api.js";
import type { DashboardContext } from "../context.js";
import { byId, flash, h, money, toast } from "../dom.js";
import { cachedGet } from "../offline-cache.js";

const SUBMIT = "expense:submit";

/**
 * Expenses and their approval. Managers approve or reject pending ones; the
 * submitter hears the decision through their inbox (`expense:approved`,
 * `expense:rejected`), on every device, even one that was offline. The list
 * is what the server lets this user see: a subcontractor, only their own.
 *
 * Submitting works offline: the form sends an `expense:submit` event, which
 * the client queues in its outbox (`outbox.events` in `dashboard.ts`) and
 * sends once the server is reachable, also after a reload. Until the server
 * created it, the expense is listed as waiting; the server stores the
 * write's mutation id with it, so a resend never makes a second one.
 */
export function mountExpenses(context: DashboardContext): void {
  const { client, api, session, directory } = context;
  const list = byId<HTMLUListElement>("expenses");
  const form = byId<HTMLFormElement>("expense-form");
  const projectSelect = form.elements.namedItem("projectId") as HTMLSelectElement;
  const mayDecide = roleMay(session.user.role, "expense:decide");
  const expenses = new Map<string, Expense>();
  const projectNames = new Map<string, string>();

  /** Submissions waiting in the outbox, oldest first. */
  const waiting = () => client.outbox.pending.filter((write): write is PendingEventWrite => write.kind === "event" && write.event === SUBMIT);

  const render = (changedId?: string) => {
    const sorted = [...expenses.values()].sort((a, b) => b.createdAt - a.createdAt);
    const queued = waiting().reverse();
    if (sorted.length === 0 && queued.length === 0) {
      list.replaceChildren(h("li", { class: "empty" }, "No expenses."));
      return;
    }
    list.replaceChildren(
      ...queued.map((write) => {
        const submission = write.data as ExpenseSubmission;
        return h(
          "li",
          { class: "queued", "data-pending-id": write.mutationId, "data-status": "queued", title: "Saved on this device; sent to the server when the connection is back." },
          h("div", {}, h("strong", {}, submission.description), h("div", { class: "muted" }, `${directory.nameOf(session.user.id)} · ${projectNames.get(submission.projectId) ?? submission.projectId}`)),
          h("div", {}, money(submission.amount), " ", h("span", { class: "badge queued" }, "waiting to send")),
        );
      }),
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

  const replaceAll = (fresh: Expense[]) => {
    expenses.clear();
    for (const expense of fresh) expenses.set(expense.id, expense);
    render();
  };
  const reload = async () => replaceAll(await api<Expense[]>("/expenses"));

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const submission: ExpenseSubmission = { projectId: String(data.get("projectId")), description: String(data.get("description")), amount: Number(data.get("amount")) };
    const projectId = projectSelect.value;
    form.reset();
    projectSelect.value = projectId;
    // Queued in the outbox: the list shows it as waiting at once, and `onSettled` below swaps in the created expense.
    client.emit(SUBMIT, submission).catch((error: Error & { code?: string }) => {
      // Not queued at all (the outbox store refused it): nothing will be sent, so say so.
      if (error.code === "STORAGE_FAILED") toast(`The expense "${submission.description}" was not kept: ${error.message}`);
    });
  });

  client.outbox.onChange(() => render());
  // Also for submissions an earlier page queued: their promises did not survive the reload.
  client.outbox.onSettled(({ write, result, error }) => {
    if (write.kind !== "event" || write.event !== SUBMIT) return;
    if (error) {
      if (error.code !== "DISCARDED") toast(`The expense "${(write.data as ExpenseSubmission).description}" was not submitted: ${error.message}`);
      return;
    }
    upsert(result as Expense);
  });

  // Decisions come to the submitter; a manager learns of new submissions by notification.
  client.on("expense:approved", upsert);
  client.on("expense:rejected", upsert);
  client.on("notification:new", (notification) => {
    if (notification.kind === "expense" && mayDecide) void reload();
  });
  directory.onChange(() => render());
  let projectsLoaded = false;
  void cachedGet<Project[]>(context, "/projects", (projects) => {
    const selected = projectSelect.value;
    projectSelect.replaceChildren(...projects.map((project) => h("option", { value: project.id }, project.name)));
    if (projects.some((project) => project.id === selected)) projectSelect.value = selected;
    for (const project of projects) projectNames.set(project.id, project.name);
    render();
    // The expenses after the projects, so their rows show project names.
    if (!projectsLoaded) {
      projectsLoaded = true;
      cachedGet<Expense[]>(context, "/expenses", replaceAll).catch(() => undefined);
    }
  }).catch(() => undefined);
}
