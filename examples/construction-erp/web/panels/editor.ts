import type { DocumentData, DocumentUpdateOutcome, DocumentVersion, PendingDocumentWrite, SettledWrite } from "@truss/client";
import type { DocumentSummary } from "../../src/sqlite-document-store.js";
import type { DashboardContext } from "../context.js";
import { byId, h, time, toast } from "../dom.js";
import { cachedGet, isNetworkFailure } from "../offline-cache.js";
import { fieldOf, trackViewers } from "./viewers.js";

const SITE_REPORT = "site-report";
/** The cache keys: the report list is cached under its API path, each report's last version and the open report by these. */
const REPORT_LIST = "/documents";
const reportKey = (id: string) => `report:${id}`;
const OPEN_REPORT = "open-report";

/** A document as `GET /api/documents` lists it: with the project it belongs to. */
type ListedDocument = DocumentSummary & { projectId: string | null };

/**
 * The site report editor, on one of the reports this user may read (the
 * picker lists them; a subcontractor's are their projects'). The open report
 * is watched (`client.documents.watch`): with the server's policy on, only
 * watchers hear a document's commits. The form remembers the version it was
 * loaded from; fields the user has not touched follow other people's saves
 * live, fields they have touched stay theirs. Saving sends only the touched
 * fields on that base version, so Truss merges edits of different fields and
 * reports edits of the same field as a conflict, which the dialog settles
 * (the connection's `onConflict`, see `dashboard.ts`).
 *
 * Offline, it works from what this browser has: the report list and the last
 * version of each report opened here are cached, and a save goes into the
 * client's outbox, which sends it once the server is reachable, also after a
 * reload. A field is in one of three states: committed (as the server has
 * it), `dirty` (typed, not saved) or waiting (saved, waiting in the outbox:
 * shown with its saved value and the class `waiting` until the server
 * commits it). Pending fields
 * come from `client.outbox.pending`, so a reload shows them again; they are
 * not dirty, so saving again does not send them twice.
 *
 * Who else has the report open, and which field each is editing, comes from
 * the report's scoped presence (`client.presence.in({ type, id })`): this tab
 * joins it once the report is watched, with `{ field }` set on focus and
 * cleared on blur, and each field shows who else is in it.
 *
 * @returns a promise that settles once the first report is open and watched.
 */
export function mountEditor(context: DashboardContext): Promise<void> {
  const { client, directory, cache } = context;
  const form = byId<HTMLFormElement>("editor");
  const picker = byId<HTMLSelectElement>("report-picker");
  const versionLabel = byId("document-version");
  const notice = byId("editor-notice");
  const viewerList = byId("report-viewers");
  const inputs = [...form.querySelectorAll<HTMLInputElement | HTMLTextAreaElement>("input[name], textarea[name]")];
  /** Fields typed and not saved. */
  const dirty = new Set<string>();
  /** Saves of this page whose promise has not settled: shown as pending even before the outbox has stored them. */
  const saving = new Set<{ id: string; changes: DocumentData }>();
  let documentId: string | null = null;
  /** The latest committed version known of the open report. */
  let committed: DocumentVersion | null = null;
  /** The version the dirty fields were typed on: what a save names as its base. */
  let baseVersion = 0;
  /** The field this tab is in, told to the others in the report. */
  let focused: string | null = null;
  const viewers = trackViewers(context, viewerList, (others) => {
    for (const input of inputs) {
      const names = others.filter((member) => fieldOf(member) === input.name).map((member) => directory.nameOf(member.userId));
      const label = input.closest("label");
      if (names.length > 0) label?.setAttribute("data-edited-by", `${names.join(", ")} editing`);
      else label?.removeAttribute("data-edited-by");
    }
  });

  const titleOf = (id: string) => picker.querySelector<HTMLOptionElement>(`option[value="${CSS.escape(id)}"]`)?.textContent ?? id;

  /** The saved, not yet committed values of a report's fields: the outbox's writes in order, then this page's saves still on their way in. */
  const pendingFields = (id: string | null): Map<string, unknown> => {
    const fields = new Map<string, unknown>();
    if (id === null) return fields;
    const queued = client.outbox.pending.filter((write): write is PendingDocumentWrite => write.kind === "document" && write.type === SITE_REPORT && write.id === id);
    for (const { changes } of [...queued, ...[...saving].filter((save) => save.id === id)]) {
      for (const [field, value] of Object.entries(changes)) fields.set(field, value);
    }
    return fields;
  };

  /** Shows the committed version, with pending and dirty fields over it. */
  const render = () => {
    const pending = pendingFields(documentId);
    for (const input of inputs) {
      const isDirty = dirty.has(input.name);
      const isPending = !isDirty && pending.has(input.name);
      input.classList.toggle("dirty", isDirty);
      input.classList.toggle("waiting", isPending);
      input.title = isPending ? "Saved on this device; waiting to be sent to the server." : "";
      if (isDirty) continue;
      const value = isPending ? pending.get(input.name) : committed?.data[input.name];
      input.value = typeof value === "string" ? value : "";
    }
    form.dataset.waiting = String(pending.size);
    if (!committed) {
      versionLabel.textContent = "";
      return;
    }
    const by = committed.updatedBy ? directory.nameOf(committed.updatedBy) : "the server";
    const waiting = pending.size > 0 ? ` · ${pending.size} field${pending.size === 1 ? "" : "s"} waiting to be sent` : "";
    versionLabel.textContent = `v${committed.version} · saved by ${by} at ${time(committed.updatedAt)}${waiting}`;
  };

  /** Caches a committed version of any report; returns whether it is the newest known. */
  const remember = (document: DocumentVersion): boolean => {
    const cached = cache.get<DocumentVersion>(reportKey(document.id));
    if (cached && cached.version > document.version) return false;
    cache.set(reportKey(document.id), document);
    return true;
  };

  /**
   * Takes in a committed version of the open report. Without dirty fields the
   * form moves its base to it; with some, the base stays where they were typed,
   * so a save is merged with it or asks about fields both changed.
   * `authoritative` (the server's answer to a watch) replaces even a newer
   * cached version, which a database reset would leave behind.
   */
  const learn = (document: DocumentVersion, authoritative = false) => {
    if (!authoritative && committed && committed.version > document.version) return;
    committed = document;
    cache.set(reportKey(document.id), document);
    if (dirty.size === 0) baseVersion = document.version;
  };

  for (const input of inputs) {
    input.addEventListener("input", () => {
      dirty.add(input.name);
      input.classList.add("dirty");
      input.classList.remove("waiting");
    });
    input.addEventListener("focus", () => {
      focused = input.name;
      viewers.update({ field: focused });
    });
    input.addEventListener("blur", () => {
      if (focused !== input.name) return;
      focused = null;
      viewers.update({ field: null });
    });
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const id = documentId;
    if (!id || dirty.size === 0) return;
    const changes: DocumentData = Object.fromEntries(inputs.filter((input) => dirty.has(input.name)).map((input) => [input.name, input.value]));
    const save = { id, changes };
    saving.add(save);
    dirty.clear();
    render();
    notice.textContent = client.status === "connected" ? "Saving…" : "Saved on this device; it goes to the server when the connection is back.";
    // The outcome is shown by `onSettled` below, for this page's saves and for those restored from an earlier one alike.
    client.documents
      .update(SITE_REPORT, id, changes, { baseVersion })
      .catch((error: Error & { code?: string }) => {
        // Not queued at all: the typed values become dirty again rather than being lost.
        if (error.code !== "STORAGE_FAILED" || documentId !== id) return;
        for (const field of Object.keys(changes)) dirty.add(field);
        notice.textContent = "";
        toast(`Could not keep the change on this device: ${error.message}`);
      })
      .finally(() => {
        saving.delete(save);
        render();
      });
  });

  /** A save left the outbox: committed, settled by the conflict dialog, refused, or discarded. */
  client.outbox.onSettled((settled: SettledWrite) => {
    const { write } = settled;
    if (write.kind !== "document" || write.type !== SITE_REPORT) return;
    const open = write.id === documentId;
    if (settled.error) {
      const discarded = settled.error.code === "DISCARDED";
      if (!discarded) toast(`Could not save ${titleOf(write.id)}: ${settled.error.message}`);
      if (open) {
        render();
        notice.textContent = discarded ? "Discarded your unsent changes." : `Not saved: ${settled.error.message}`;
      }
      return;
    }
    const outcome = settled.result as DocumentUpdateOutcome;
    const version = outcome.status === "conflict" ? outcome.current : outcome.document;
    if (!open) {
      remember(version);
      if (outcome.status === "conflict") toast(`Your change to ${titleOf(write.id)} was dropped: version ${version.version} was kept.`);
      return;
    }
    // The form's dirty fields were typed on `baseVersion`; when this commit is the only change since, they are now based on it.
    const onlyOwnChange = outcome.status === "applied" && version.version === baseVersion + 1 && write.baseVersion === baseVersion;
    learn(version);
    if (onlyOwnChange) baseVersion = version.version;
    render();
    notice.textContent = outcomeText(outcome);
  });

  byId("discard").addEventListener("click", () => {
    const id = documentId;
    if (!id) return;
    dirty.clear();
    // Saves still waiting are this user's changes too; one already on its way may still be committed.
    for (const write of client.outbox.pending) {
      if (write.kind === "document" && write.type === SITE_REPORT && write.id === id) void client.outbox.discard(write.mutationId);
    }
    if (committed) baseVersion = committed.version;
    render();
    if (client.status !== "connected") return;
    void client.documents.get(SITE_REPORT, id).then(
      (document) => {
        if (documentId !== id) return;
        learn(document, true);
        render();
      },
      () => undefined,
    );
  });

  client.documents.onUpdated((update) => {
    if (update.type !== SITE_REPORT || update.id !== documentId) return;
    const document: DocumentVersion = { type: update.type, id: update.id, version: update.version, data: update.data, updatedAt: Date.now(), updatedBy: update.updatedBy };
    learn(document);
    render();
    const by = update.updatedBy ? directory.nameOf(update.updatedBy) : "Someone";
    if (dirty.size > 0) notice.textContent = `${by} saved version ${update.version} while you were editing. Saving will merge, or ask you about fields you both changed.`;
    else if (pendingFields(documentId).size > 0) notice.textContent = `${by} saved version ${update.version}. Your waiting changes will be merged with it, or you will be asked about fields you both changed.`;
    else notice.textContent = `Updated to version ${update.version} by ${by}.`;
  });

  client.onDropped((drop) => {
    if (drop.kind !== "document" || drop.type !== SITE_REPORT) return;
    picker.querySelector(`option[value="${CSS.escape(drop.id)}"]`)?.remove();
    cache.delete(reportKey(drop.id));
    if (drop.id !== documentId) return;
    viewers.leave();
    documentId = null;
    committed = null;
    delete form.dataset.ready;
    delete form.dataset.source;
    form.inert = true;
    notice.textContent = `You can no longer see this report: ${drop.error.message}`;
  });

  directory.onChange(() => render());

  /**
   * Shows a report: at once from the cache when this browser has it (with
   * its waiting changes), then as the server has it once the watch is
   * accepted, which waits for the connection when offline. Unsaved edits of
   * the previous report are dropped; its waiting saves stay in the outbox.
   */
  const openReport = async (id: string) => {
    const previous = documentId;
    documentId = id;
    dirty.clear();
    delete form.dataset.ready;
    form.dataset.documentId = id;
    picker.value = id;
    cache.set(OPEN_REPORT, id);
    if (previous && previous !== id) {
      viewers.leave();
      void client.documents.unwatch(SITE_REPORT, previous).catch(() => undefined);
    }
    committed = cache.get<DocumentVersion>(reportKey(id)) ?? null;
    baseVersion = committed?.version ?? 0;
    render();
    if (committed) {
      form.inert = false;
      form.dataset.source = "cache";
      notice.textContent = client.status === "connected" ? "" : offlineNotice();
    } else {
      form.inert = true;
      delete form.dataset.source;
      notice.textContent = client.status === "connected" ? "" : "Offline: this report was not opened on this device before; it loads when the connection is back.";
    }

    const document = await client.documents.watch(SITE_REPORT, id);
    if (documentId !== id) return;
    if (!document) {
      notice.textContent = `The report ${id} no longer exists.`;
      return;
    }
    learn(document, true);
    // Presence stands on the watch: joined once the server holds it, again by the client after each reconnection.
    viewers.enter({ type: SITE_REPORT, id }, { field: focused });
    form.inert = false;
    form.dataset.source = "live";
    render();
    if (notice.textContent?.startsWith("Offline:")) notice.textContent = "";
    form.dataset.ready = "true";
  };

  picker.addEventListener("change", () => {
    openReport(picker.value).catch((error: Error) => toast(`Could not open the site report: ${error.message}`));
  });

  /** What the notice says while the open report shows as cached. */
  const offlineNotice = () => {
    const waiting = pendingFields(documentId).size;
    const version = committed ? `version ${committed.version}` : "the version";
    return `Offline: this is ${version} as this device last saw it.${waiting > 0 ? " Your waiting changes are sent when the connection is back." : ""}`;
  };

  // Keeps an open report's waiting fields current when a write is added or leaves the outbox (also those loaded from an earlier page).
  client.outbox.onChange(() => {
    render();
    if (form.dataset.source === "cache" && notice.textContent?.startsWith("Offline:")) notice.textContent = offlineNotice();
  });

  /** Opens the report open last time (or the first), from the cached list at once and the server's when it answers. */
  const open = () => {
    let opening: Promise<void> | undefined;
    const listed = cachedGet<ListedDocument[]>(context, REPORT_LIST, (documents) => {
      const reports = documents.filter((summary) => summary.type === SITE_REPORT);
      picker.replaceChildren(...reports.map((report) => h("option", { value: report.id }, report.title ?? report.id)));
      if (documentId && reports.some((report) => report.id === documentId)) picker.value = documentId;
      if (opening) return;
      const remembered = cache.get<string>(OPEN_REPORT);
      const first = reports.find((report) => report.id === remembered) ?? reports[0];
      if (!first) {
        form.inert = true;
        notice.textContent = "There is no site report you can open.";
        return;
      }
      opening = openReport(first.id);
    });
    return listed.then(() => opening);
  };
  return open().catch((error: Error) => {
    // Offline with nothing cached: `cachedGet` loads the list, and opens a report, once the connection is back.
    if (isNetworkFailure(error)) notice.textContent = "Offline: the site reports load when the connection is back.";
    else toast(`Could not open the site report: ${error.message}`);
  });
}

/** What the notice says about a save the server answered. */
function outcomeText(outcome: DocumentUpdateOutcome): string {
  if (outcome.status === "conflict") return `Kept version ${outcome.current.version}; your changes were dropped.`;
  if (outcome.resolution === "custom") return "Saved your merge.";
  if (outcome.resolution === "mine") return "Saved; your version of the conflicting fields won.";
  return outcome.status === "merged" ? "Saved, merged with changes made meanwhile." : "Saved.";
}
