/** Whether `id` has the inbox id form `<ms>-<seq>` (decimal digits, at most 16 each). */
export function isInboxId(id: unknown): id is string {
  return typeof id === "string" && INBOX_ID.test(id);
}

const INBOX_ID = /^\d{1,16}-\d{1,16}$/;

/**
 * Orders two inbox ids (`<ms>-<seq>`): negative when `a` is older, positive
 * when newer, 0 when equal.
 */
export function compareInboxIds(a: string, b: string): number {
  const aDash = a.indexOf("-");
  const bDash = b.indexOf("-");
  const byMs = idPart(a, 0, aDash < 0 ? a.length : aDash) - idPart(b, 0, bDash < 0 ? b.length : bDash);
  return byMs !== 0 ? byMs : seqOf(a, aDash) - seqOf(b, bDash);
}

/** The sequence of an id: between its first dash and the next (or the end); 0 without a dash. */
function seqOf(id: string, dash: number): number {
  if (dash < 0) return 0;
  const next = id.indexOf("-", dash + 1);
  return idPart(id, dash + 1, next < 0 ? id.length : next);
}

/** `Number(id.slice(from, to))`, read digit by digit (ids are compared on every push and ack): no substring for a run of digits. */
function idPart(id: string, from: number, to: number): number {
  let value = 0;
  for (let index = from; index < to; index++) {
    const digit = id.charCodeAt(index) - 48;
    if (digit < 0 || digit > 9) return Number(id.slice(from, to));
    value = value * 10 + digit;
  }
  return value;
}
