// @ts-check
/**
 * A small TypeDoc plugin for the docs site: a guide added with
 * `projectDocuments` is named in the navigation by its first `# Heading`
 * (not by its file name), so the guides need no front matter and read the
 * same on GitHub.
 */
import { Converter } from "typedoc";

/** @param {import("typedoc").Application} app */
export function load(app) {
  app.converter.on(Converter.EVENT_CREATE_DOCUMENT, (_context, document) => {
    if (document.frontmatter["title"] !== undefined) return;
    const text = document.content.map((part) => part.text).join("");
    const heading = /^#[ \t]+(.+?)[ \t]*#*$/m.exec(text)?.[1];
    // "Recovery: a device that …" is named "Recovery", which also keeps its URL short.
    if (heading) document.name = heading.replace(/`/g, "").split(":")[0].trim();
  });
}
