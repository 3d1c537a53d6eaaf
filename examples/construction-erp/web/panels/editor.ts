import type { DocumentVersion } from "@truss/client";
import type { DocumentSummary } from "../../src/sqlite-document-store.js";
import type { DashboardContext } from "../context.js";
import { byId, h, time, toast } from "../dom.js";
import { askToResolve } from "./conflict-dialog.js";

const SITE_REPORT = "site-report";
const TYPING_EVERY_MS = 1500;
const TYPING_SHOWN_MS = 3000;

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
 * reports edits of the same field as a conflict, which the dialog settles.
 *
 * @returns a promise that settles once the first report is open and watched.
 */
export function mountEditor({ client, api, session, directory }: DashboardContext): Promise<void> {
  const form = byId<HTMLFormElement>("editor");
  const picker = byId<HTMLSelectElement>("report-picker");
  const versionLabel = byId("document-version");
  const notice = byId("editor-notice");
  const typing = byId("typing");
  const inputs = [...form.querySelectorAll<HTMLInputElement | HTMLTextAreaElement>("input[name], textarea[name]")];
  const dirty = new Set<string>();
  const lastTypingSent = new Map<string, number>();
  let documentId: string | null = null;
  let baseVersion = 0;
  let typingTimer: ReturnType<typeof setTimeout> | undefined;

  const showVersion = (document: DocumentVersion) => {
    const by = document.updatedBy ? directory.nameOf(document.updatedBy) : "the server";
    versionLabel.textContent = `v${document.version} · saved by ${by} at ${time(document.updatedAt)}`;
  };

  /** Shows a version; fields in `keep` hold the user's unsaved edits and are left alone. */
  const fill = (document: DocumentVersion, keep: ReadonlySet<string> = new Set()) => {
    for (const input of inputs) {
      if (keep.has(input.name)) continue;
      const value = document.data[input.name];
      input.value = typeof value === "string" ? value : "";
      input.classList.remove("dirty");
    }
    showVersion(document);
  };

  const loadCommitted = (document: DocumentVersion) => {
    dirty.clear();
    baseVersion = document.version;
    fill(document);
    notice.textContent = "";
  };

  for (const input of inputs) {
    input.addEventListener("input", () => {
      dirty.add(input.name);
      input.classList.add("dirty");
      const last = lastTypingSent.get(input.name) ?? 0;
      if (documentId && Date.now() - last > TYPING_EVERY_MS) {
        lastTypingSent.set(input.name, Date.now());
        // Best effort: a dropped typing hint is harmless.
        client.emit("user:typing", { type: SITE_REPORT, id: documentId, field: input.name }).catch(() => undefined);
      }
    });
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!documentId || dirty.size === 0) return;
    const changes = Object.fromEntries(inputs.filter((input) => dirty.has(input.name)).map((input) => [input.name, input.value]));
    client.documents
      .update(SITE_REPORT, documentId, changes, { baseVersion, onConflict: (conflict) => askToResolve(conflict, (id) => directory.nameOf(id)) })
      .then((outcome) => {
        if (outcome.status === "conflict") {
          loadCommitted(outcome.current);
          notice.textContent = `Kept version ${outcome.current.version}; your changes were dropped.`;
          return;
        }
        loadCommitted(outcome.document);
        notice.textContent =
          outcome.resolution === "custom" ? "Saved your merge." : outcome.resolution === "mine" ? "Saved; your version of the conflicting fields won." : outcome.status === "merged" ? "Saved, merged with changes made meanwhile." : "Saved.";
      })
      .catch((error: Error) => toast(`Could not save: ${error.message}`));
  });

  byId("discard").addEventListener("click", () => {
    if (!documentId) return;
    void client.documents.get(SITE_REPORT, documentId).then(loadCommitted);
  });

  client.documents.onUpdated((update) => {
    if (update.type !== SITE_REPORT || update.id !== documentId) return;
    const document = { type: update.type, id: update.id, version: update.version, data: update.data, updatedAt: Date.now(), updatedBy: update.updatedBy };
    fill(document, dirty);
    const by = update.updatedBy ? directory.nameOf(update.updatedBy) : "Someone";
    if (dirty.size === 0) {
      baseVersion = update.version;
      notice.textContent = `Updated to version ${update.version} by ${by}.`;
    } else notice.textContent = `${by} saved version ${update.version} while you were editing. Saving will merge, or ask you about fields you both changed.`;
  });

  client.on("user:typing", ({ type, id, field, userId }) => {
    // The project's topic brings this user's own hints back too.
    if (type !== SITE_REPORT || id !== documentId || userId === session.user.id) return;
    typing.textContent = `${directory.nameOf(userId)} is typing in ${field}…`;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => (typing.textContent = ""), TYPING_SHOWN_MS);
  });

  client.onDropped((drop) => {
    if (drop.kind !== "document" || drop.type !== SITE_REPORT) return;
    picker.querySelector(`option[value="${CSS.escape(drop.id)}"]`)?.remove();
    if (drop.id !== documentId) return;
    documentId = null;
    delete form.dataset.ready;
    form.inert = true;
    notice.textContent = `You can no longer see this report: ${drop.error.message}`;
  });

  /** Watches a report (and stops watching the previous one) and shows it; unsaved edits of the previous one are dropped. */
  const openReport = async (id: string) => {
    const previous = documentId;
    documentId = id;
    delete form.dataset.ready;
    if (previous && previous !== id) void client.documents.unwatch(SITE_REPORT, previous).catch(() => undefined);
    const document = await client.documents.watch(SITE_REPORT, id);
    if (documentId !== id) return;
    if (!document) {
      notice.textContent = `The report ${id} no longer exists.`;
      return;
    }
    form.inert = false;
    loadCommitted(document);
    form.dataset.documentId = id;
    form.dataset.ready = "true";
  };

  picker.addEventListener("change", () => {
    openReport(picker.value).catch((error: Error) => toast(`Could not open the site report: ${error.message}`));
  });

  // Waits for the connection: documents are read over the socket.
  const open = async () => {
    const reports = (await api<ListedDocument[]>("/documents")).filter((summary) => summary.type === SITE_REPORT);
    picker.replaceChildren(...reports.map((report) => h("option", { value: report.id }, report.title ?? report.id)));
    const first = reports[0];
    if (!first) {
      form.inert = true;
      notice.textContent = "There is no site report you can open.";
      return;
    }
    await openReport(first.id);
  };
  return open().catch((error: Error) => toast(`Could not open the site report: ${error.message}`));
}
