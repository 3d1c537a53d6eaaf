import type { DocumentVersion } from "@truss/client";
import type { DocumentSummary } from "../../src/sqlite-document-store.js";
import type { DashboardContext } from "../context.js";
import { byId, time, toast } from "../dom.js";
import { askToResolve } from "./conflict-dialog.js";

const SITE_REPORT = "site-report";
const TYPING_EVERY_MS = 1500;
const TYPING_SHOWN_MS = 3000;

/**
 * The site report editor. The form remembers the version it was loaded
 * from; fields the user has not touched follow other people's saves live,
 * fields they have touched stay theirs. Saving sends only the touched fields
 * on that base version, so Truss merges edits of different fields and
 * reports edits of the same field as a conflict, which the dialog settles.
 */
export function mountEditor({ client, api, directory }: DashboardContext): void {
  const form = byId<HTMLFormElement>("editor");
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
    if (type !== SITE_REPORT || id !== documentId) return;
    typing.textContent = `${directory.nameOf(userId)} is typing in ${field}…`;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => (typing.textContent = ""), TYPING_SHOWN_MS);
  });

  // Waits for the connection: documents are read over the socket.
  const open = async () => {
    const reports = (await api<DocumentSummary[]>("/documents")).filter((summary) => summary.type === SITE_REPORT);
    const first = reports[0];
    if (!first) {
      notice.textContent = "This company has no site report yet.";
      return;
    }
    documentId = first.id;
    loadCommitted(await client.documents.get(SITE_REPORT, first.id));
    form.dataset.ready = "true";
  };
  open().catch((error: Error) => toast(`Could not open the site report: ${error.message}`));
}
