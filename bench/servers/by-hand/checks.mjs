/**
 * What any hand-written server must check to do the inbox and document jobs
 * safely, written the plain way such a server would: data is JSON and capped
 * in bytes where it is accepted (so one user cannot fill the server's memory,
 * and what is stored is what was sent), and what a client sends has the shape
 * the handler reads (so a malformed request gets a coded error instead of
 * moving a cursor to garbage or writing a document under a key it made up).
 * The caps are Truss's defaults, so both servers refuse the same requests.
 * Nothing here is one of Truss's extras (metrics, rate limits, quotas per
 * company, idempotency, tracing).
 */
export const MAX_MESSAGE_BYTES = 64 * 1024;
export const MAX_DOCUMENT_BYTES = 256 * 1024;
export const MAX_ACK_IDS = 1000;

const INBOX_ID = /^\d{1,16}-\d{1,16}$/;

export const codedError = (code, message) => Object.assign(new Error(message), { code });

/** `data` as JSON text, refused when JSON cannot carry it or it is over `maxBytes`. */
export function jsonOf(data, maxBytes, what) {
  let json;
  try {
    json = JSON.stringify(data);
  } catch (error) {
    throw codedError("INVALID_PAYLOAD", `${what} is not JSON (${error.message})`);
  }
  if (json !== undefined && Buffer.byteLength(json) > maxBytes) throw codedError("PAYLOAD_TOO_LARGE", `${what} is over ${maxBytes} bytes`);
  return json;
}

/** The newest of an `inbox:ack`'s ids, or `null` when the request is not 1 to 1,000 inbox ids. */
export function newestAckedId(request, compareIds) {
  const ids = request?.ids;
  if (!Array.isArray(ids) || ids.length === 0 || ids.length > MAX_ACK_IDS) return null;
  let newest = null;
  for (const id of ids) {
    if (typeof id !== "string" || !INBOX_ID.test(id)) return null;
    if (newest === null || compareIds(id, newest) > 0) newest = id;
  }
  return newest;
}

/** Whether a `document:update` has the shape the handler reads: a type and id, a base version, an object of changes. */
export function isDocumentUpdate(request) {
  return (
    typeof request?.type === "string" &&
    request.type.length > 0 &&
    request.type.length <= 128 &&
    typeof request.id === "string" &&
    request.id.length > 0 &&
    request.id.length <= 256 &&
    Number.isSafeInteger(request.baseVersion) &&
    request.baseVersion >= 0 &&
    typeof request.changes === "object" &&
    request.changes !== null &&
    !Array.isArray(request.changes)
  );
}
