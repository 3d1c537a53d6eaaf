import type { ConflictResolution, DocumentConflict } from "@truss/client";
import { byId, h } from "../dom.js";

/**
 * Asks the user how to settle a document conflict: keep their version of
 * each conflicting field, take the one that was saved meanwhile, or merge
 * the two by hand (pre-filled with both).
 */
export function askToResolve(conflict: DocumentConflict, nameOf: (userId: string) => string): Promise<ConflictResolution> {
  const dialog = byId<HTMLDialogElement>("conflict-dialog");
  const fields = byId("conflict-fields");
  const buttons = (choice: string) => dialog.querySelector<HTMLButtonElement>(`button[data-choice="${choice}"]`)!;
  const author = conflict.current.updatedBy ? nameOf(conflict.current.updatedBy) : "Someone";
  byId("conflict-summary").textContent =
    `${author} saved version ${conflict.current.version} while you were editing. ` +
    `${conflict.conflicts.length === 1 ? "One field was" : `${conflict.conflicts.length} fields were`} changed on both sides.`;

  fields.replaceChildren(
    ...conflict.conflicts.map(({ field, current, incoming }) =>
      h(
        "section",
        { class: "conflict-field", "data-field": field },
        h("h3", {}, field),
        h(
          "div",
          { class: "versions" },
          h("div", { class: "theirs" }, h("span", { class: "label" }, `Theirs (${author})`), text(current)),
          h("div", { class: "mine" }, h("span", { class: "label" }, "Yours"), text(incoming)),
        ),
        h("textarea", { name: field, rows: 3, hidden: true, "aria-label": `Merged ${field}` }, mergeOf(current, incoming)),
      ),
    ),
  );
  buttons("save-merge").hidden = true;
  for (const choice of ["mine", "theirs", "merge"]) buttons(choice).hidden = false;
  dialog.showModal();

  return new Promise((resolve) => {
    const finish = (resolution: ConflictResolution) => {
      dialog.removeEventListener("click", onClick);
      dialog.removeEventListener("cancel", onCancel);
      dialog.close();
      resolve(resolution);
    };
    const onClick = (event: MouseEvent) => {
      const choice = (event.target as HTMLElement).closest<HTMLButtonElement>("button[data-choice]")?.dataset.choice;
      if (choice === "mine" || choice === "theirs") finish(choice);
      else if (choice === "merge") {
        fields.querySelectorAll("textarea").forEach((area) => (area.hidden = false));
        for (const other of ["mine", "theirs", "merge"]) buttons(other).hidden = true;
        buttons("save-merge").hidden = false;
        fields.querySelector("textarea")?.focus();
      } else if (choice === "save-merge") {
        const merged: Record<string, unknown> = { ...conflict.changes };
        fields.querySelectorAll("textarea").forEach((area) => (merged[area.name] = area.value));
        finish(merged);
      }
    };
    // Escape would leave the save half-done; the user has to pick one of the three.
    const onCancel = (event: Event) => event.preventDefault();
    dialog.addEventListener("click", onClick);
    dialog.addEventListener("cancel", onCancel);
  });
}

function text(value: unknown): string {
  if (value === undefined || value === null) return "(empty)";
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** Both texts, theirs first, as the starting point of a manual merge. */
function mergeOf(current: unknown, incoming: unknown): string {
  const theirs = current === undefined || current === null ? "" : text(current);
  const mine = incoming === undefined || incoming === null ? "" : text(incoming);
  if (theirs.includes(mine)) return theirs;
  if (mine.includes(theirs)) return mine;
  return `${theirs}\n${mine}`;
}
