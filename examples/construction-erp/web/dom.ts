/** Small DOM and formatting helpers shared by the panels. */

type Child = Node | string | number | null | undefined | false;

/**
 * Creates an element: `h("li", { class: "row", "data-id": id }, "text", child)`.
 * Attributes whose value is `false`, `null` or `undefined` are left out;
 * strings become text nodes, so nothing is ever parsed as HTML.
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | number | boolean | null | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === "object" ? child : String(child));
  }
  return element;
}

/** The element with this id; throws if the page lacks it, which is a bug in the page. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`The page has no #${id}.`);
  return element as T;
}

/** Replays the highlight animation on an element that just changed. */
export function flash(element: Element): void {
  element.classList.remove("flash");
  void (element as HTMLElement).offsetWidth;
  element.classList.add("flash");
}

const currency = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 0 });
const clock = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });

/** `$1,850`. */
export const money = (amount: number): string => currency.format(amount);
/** `14:02:11`. */
export const time = (ms: number): string => clock.format(ms);

/** Shows a short message in the corner for a few seconds. */
export function toast(message: string): void {
  const element = h("div", { class: "toast", role: "status" }, message);
  byId("toasts").append(element);
  setTimeout(() => element.remove(), 6000);
}
