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
  const [aMs = "0", aSeq = "0"] = a.split("-");
  const [bMs = "0", bSeq = "0"] = b.split("-");
  const byMs = Number(aMs) - Number(bMs);
  return byMs !== 0 ? byMs : Number(aSeq) - Number(bSeq);
}
