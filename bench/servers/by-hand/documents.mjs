/**
 * Versioned documents written by hand on plain Socket.IO, as the baseline of
 * the document scenarios: `document:update` with a base version, field-level
 * merge of stale writes (a conflict when the same field changed since the
 * base), an atomic compare-and-set commit, a bounded history, and
 * `document:updated` to the rest of the company. Same events, payloads and
 * outcomes as Truss with its default `fieldMerge()` resolver. It does what
 * any server must to offer this safely (checks.mjs): a request without the
 * shape the handler reads is refused, and a commit whose document would be
 * over the byte cap is refused before it is stored. None of Truss's extras:
 * no mutation ids, no deltas, no quotas per company, no metrics or rate limits.
 */
import { codedError, isDocumentUpdate, MAX_DOCUMENT_BYTES, jsonOf } from "./checks.mjs";

const HISTORY = 100;

const sameJson = (a, b) => a === b || JSON.stringify(a) === JSON.stringify(b);

/**
 * Decides an update against the latest version: applied on the current
 * base, merged when the fields it changes were untouched since its base,
 * otherwise a conflict naming each field.
 */
function decide(current, base, update) {
  if (update.baseVersion === current.version) return { status: "applied", data: { ...current.data, ...update.changes } };
  const conflicts = [];
  for (const [field, incoming] of Object.entries(update.changes)) {
    const currentValue = current.data[field];
    if (sameJson(currentValue, incoming)) continue;
    if (base && sameJson(base.data[field], currentValue)) continue;
    conflicts.push({ field, base: base?.data[field], current: currentValue, incoming });
  }
  if (conflicts.length > 0) return { status: "conflict", conflicts };
  return { status: "merged", data: { ...current.data, ...update.changes } };
}

function handler(io, update) {
  return (socket) => {
    const { userId, companyId } = socket.data.user;
    socket.on("document:update", async (request, ack) => {
      try {
        if (!isDocumentUpdate(request)) throw codedError("INVALID_PAYLOAD", "document:update takes { type, id, baseVersion, changes }");
        const result = await update({ companyId, type: request.type, id: request.id }, request, userId);
        if (result.status !== "conflict") socket.to(`company:${companyId}`).emit("document:updated", broadcastOf(result.document, request));
        ack?.({ ok: true, ...result });
      } catch (error) {
        ack?.({ ok: false, error: { code: error.code ?? "INTERNAL_ERROR", message: error.message } });
      }
    });
  };
}

function broadcastOf(document, request) {
  return {
    type: document.type,
    id: document.id,
    version: document.version,
    data: document.data,
    updatedBy: document.updatedBy,
    changedFields: Object.keys(request.changes),
  };
}

/** Documents in a Map: current version and a Map of recent versions. */
export function memoryDocuments(io) {
  const documents = new Map();
  const keyOf = (key) => `${key.companyId}\u0000${key.type}\u0000${key.id}`;
  async function update(key, request, updatedBy) {
    const record = documents.get(keyOf(key));
    if (!record) {
      if (request.baseVersion !== 0) throw codedError("NOT_FOUND", "no such document");
      const data = { ...request.changes };
      jsonOf(data, MAX_DOCUMENT_BYTES, `${key.type}/${key.id}`);
      const document = { type: key.type, id: key.id, version: 1, data, updatedAt: Date.now(), updatedBy };
      documents.set(keyOf(key), { current: document, history: new Map([[1, document]]) });
      return { status: "applied", document };
    }
    const { current, history } = record;
    if (request.baseVersion > current.version) throw codedError("VERSION_NOT_FOUND", "base is newer than the latest");
    const decision = decide(current, history.get(request.baseVersion), request);
    if (decision.status === "conflict") return { status: "conflict", current, conflicts: decision.conflicts };
    jsonOf(decision.data, MAX_DOCUMENT_BYTES, `${key.type}/${key.id}`);
    const document = { type: key.type, id: key.id, version: current.version + 1, data: decision.data, updatedAt: Date.now(), updatedBy };
    record.current = document;
    history.set(document.version, document);
    history.delete(document.version - HISTORY);
    return { status: decision.status, document };
  }
  return { update, onConnection: handler(io, update) };
}

/** Commits the next version if the latest is still ARGV[1]; keeps the last HISTORY versions. */
const COMPARE_AND_SET = `
local version = tonumber(redis.call('GET', KEYS[1]) or '0')
if version ~= tonumber(ARGV[1]) then return version end
redis.call('SET', KEYS[1], version + 1)
redis.call('HSET', KEYS[2], version + 1, ARGV[2])
redis.call('HDEL', KEYS[2], version + 1 - tonumber(ARGV[3]))
return -1
`;

/** The latest version number and its document, read atomically. */
const GET_LATEST = `
local version = redis.call('GET', KEYS[1])
if not version then return false end
return redis.call('HGET', KEYS[2], version)
`;

/** Documents in Redis: a version counter and a hash of versions, committed by a Lua compare-and-set. */
export function redisDocuments(io, redis, prefix) {
  redis.defineCommand("benchDocCas", { numberOfKeys: 2, lua: COMPARE_AND_SET });
  redis.defineCommand("benchDocGet", { numberOfKeys: 2, lua: GET_LATEST });
  const keys = (key) => {
    const base = `${prefix}:doc:${key.companyId}:${key.type}:${key.id}`;
    return [`${base}:v`, `${base}:h`];
  };
  async function update(key, request, updatedBy) {
    const [versionKey, historyKey] = keys(key);
    for (let attempt = 0; attempt < 64; attempt++) {
      const raw = await redis.benchDocGet(versionKey, historyKey);
      const current = raw ? JSON.parse(raw) : null;
      let decision;
      if (!current) {
        if (request.baseVersion !== 0) throw codedError("NOT_FOUND", "no such document");
        decision = { status: "applied", data: { ...request.changes } };
      } else if (request.baseVersion > current.version) {
        throw codedError("VERSION_NOT_FOUND", "base is newer than the latest");
      } else {
        const baseRaw = request.baseVersion === current.version ? null : await redis.hget(historyKey, String(request.baseVersion));
        decision = decide(current, baseRaw ? JSON.parse(baseRaw) : null, request);
        if (decision.status === "conflict") return { status: "conflict", current, conflicts: decision.conflicts };
      }
      const version = (current?.version ?? 0) + 1;
      const document = { type: key.type, id: key.id, version, data: decision.data, updatedAt: Date.now(), updatedBy };
      const found = await redis.benchDocCas(versionKey, historyKey, String(version - 1), jsonOf(document, MAX_DOCUMENT_BYTES, `${key.type}/${key.id}`), String(HISTORY));
      if (found === -1) return { status: decision.status, document };
    }
    throw codedError("STORE_UNAVAILABLE", "too much contention");
  }
  return { update, onConnection: handler(io, update) };
}
