import { SPAN_KIND, traced } from "../kernel/tracing.js";
import type { DocumentKey } from "../documents/store.js";
import { TrussError } from "../kernel/errors.js";
import { MAX_MUTATION_ID_LENGTH, PROTOCOL_EVENTS, topicStream, type DocumentUpdateResult } from "@truss/protocol";
import type { Connection } from "../kernel/connection.js";
import { requireInteger, requireObject, requireString, type EventHandler } from "./dispatch.js";
import type { DocumentService } from "../documents/service.js";
import type { DocumentRequest } from "../policy/policy.js";
import type { InboxService } from "../inbox/service.js";
import type { Policy } from "../policy/policy.js";
import type { PresenceService } from "../presence/service.js";
import type { ScopedPresenceService } from "../scoped-presence/service.js";
import type { StreamService } from "../streams/service.js";
import type { DroppedSubscriptions, Subscriptions } from "../topics/subscriptions.js";

/** What the protocol's client events are served by. */
export interface ProtocolServices {
  refreshAuth(connection: Connection, token: string): Promise<{ expiresAt: number | null; dropped: DroppedSubscriptions }>;
  policy: Policy;
  subscriptions: Subscriptions;
  streams: StreamService;
  presence: PresenceService;
  scopedPresence: ScopedPresenceService;
  inbox: InboxService;
  documents: DocumentService;
}

/**
 * Registers the handlers of the protocol's client events (`auth:refresh`,
 * `inbox:ack`, `presence:list`, `presence:join|set|leave|members`, `document:*`, `topic:*`). Each validates its
 * payload by hand, every document key takes its company from the principal,
 * never from the payload, and every document operation asks the policy first
 * (an update asks for read and write, a rollback for read, write and rollback).
 */
export function registerProtocolHandlers(handlers: Map<string, EventHandler>, services: ProtocolServices): void {
  const key = (connection: Connection, payload: unknown): DocumentKey => ({
    companyId: connection.principal.companyId,
    type: requireString(payload, "type"),
    id: requireString(payload, "id"),
  });
  /** The document's key, once the policy allowed each of `actions` on it, asked in order: the first refusal is the answer. */
  const authorized = async (connection: Connection, payload: unknown, ...actions: Array<DocumentRequest["action"]>): Promise<DocumentKey> => {
    const document = key(connection, payload);
    for (const action of actions) {
      const pending = services.policy.check(connection.principal, { action, type: document.type, id: document.id });
      if (pending) await pending;
    }
    return document;
  };
  const writer = (connection: Connection) => ({ userId: connection.principal.userId, socketId: connection.socket.id });
  const on = (event: string, handler: EventHandler) => handlers.set(event, handler);

  on(PROTOCOL_EVENTS.authRefresh, (connection, payload) => services.refreshAuth(connection, requireString(payload, "token", 16_384)));
  on(PROTOCOL_EVENTS.inboxAck, (connection, payload) => services.inbox.ack(connection, (payload as { ids?: unknown } | undefined)?.ids));
  on(PROTOCOL_EVENTS.presenceList, (connection, payload) => services.presence.listFor(connection, payload));
  on(PROTOCOL_EVENTS.presenceJoin, (connection, payload) => services.scopedPresence.join(connection, payload));
  on(PROTOCOL_EVENTS.presenceSet, async (connection, payload) => services.scopedPresence.set(connection, payload));
  on(PROTOCOL_EVENTS.presenceLeave, (connection, payload) => services.scopedPresence.leave(connection, payload));
  on(PROTOCOL_EVENTS.presenceMembers, (connection, payload) => services.scopedPresence.members(connection, payload));
  on(PROTOCOL_EVENTS.documentGet, async (connection, payload) => ({
    document: await services.documents.get(await authorized(connection, payload, "document:read")),
  }));
  on(PROTOCOL_EVENTS.documentUpdate, (connection, payload) => {
    const type = (payload as { type?: unknown } | null | undefined)?.type;
    const attributes = {
      "truss.event": PROTOCOL_EVENTS.documentUpdate,
      "truss.company_id": connection.principal.companyId,
      ...(typeof type === "string" ? { "truss.document.type": type.slice(0, 100) } : {}),
    };
    return traced("truss.document.update", SPAN_KIND.server, attributes, async (span) => {
      const update = {
        baseVersion: requireInteger(payload, "baseVersion"),
        changes: requireObject(payload, "changes"),
        ...optionalMutation(payload),
        ...((payload as { baseChanges?: unknown }).baseChanges === undefined ? {} : { baseChanges: requireObject(payload, "baseChanges") }),
      };
      // The answer carries the document (the version committed, or the current one of a conflict): an update must pass the
      // read (refused as a read is, NOT_FOUND where reads are hidden) before the write, as a rollback does.
      const document = await authorized(connection, payload, "document:read");
      let repeat: DocumentUpdateResult | null = null;
      try {
        const pending = services.policy.check(connection.principal, { action: "document:write", type: document.type, id: document.id });
        if (pending) await pending;
      } catch (refusal) {
        // A resend of a write committed before the writer lost write access (its answer was lost) is answered as the
        // commit it was, not as refused, which the device would take for "not saved".
        repeat = await services.documents.committedRepeat(document, update, writer(connection));
        if (!repeat) throw refusal;
      }
      const result = repeat ?? (await services.documents.update(document, update, writer(connection)));
      span.set("truss.outcome", result.status);
      if ("duplicate" in result && result.duplicate) span.set("truss.document.duplicate", true);
      return result;
    });
  });
  on(PROTOCOL_EVENTS.documentHistory, async (connection, payload) => {
    const limit = requireInteger(payload, "limit", { min: 1, optional: true });
    const document = await authorized(connection, payload, "document:read");
    return { versions: await services.documents.history(document, Number.isNaN(limit) ? undefined : limit) };
  });
  on(PROTOCOL_EVENTS.documentRollback, async (connection, payload) => {
    const toVersion = requireInteger(payload, "toVersion", { min: 1 });
    // A rollback answers with the document and commits a version: it must pass the read (refused as a read is, NOT_FOUND where
    // reads are hidden) and the write before the rollback itself.
    const document = await authorized(connection, payload, "document:read", "document:write", "document:rollback");
    return { document: await services.documents.rollback(document, toVersion, writer(connection)) };
  });
  on(PROTOCOL_EVENTS.documentWatch, async (connection, payload) => {
    const document = key(connection, payload);
    return { document: await services.subscriptions.watch(connection, document, () => services.documents.find(document)) };
  });
  on(PROTOCOL_EVENTS.documentUnwatch, async (connection, payload) => services.subscriptions.unwatch(connection, key(connection, payload)));
  on(PROTOCOL_EVENTS.streamRead, (connection, payload) => services.streams.read(connection, payload));
  on(PROTOCOL_EVENTS.topicSubscribe, async (connection, payload) => {
    // Read before the socket joins the topic's room, as the company stream's start is (see StreamService.prepare).
    const { topic, prepared: start } = await services.subscriptions.subscribe(connection, payload, (topic) =>
      services.streams.startOf({ companyId: connection.principal.companyId, stream: topicStream(topic) }),
    );
    return { topic, start };
  });
  on(PROTOCOL_EVENTS.topicUnsubscribe, async (connection, payload) => services.subscriptions.unsubscribe(connection, payload));
}

/** The optional `mutationId` and `mutationAgeMs` of a `document:update`. */
function optionalMutation(payload: unknown): { mutationId?: string; mutationAgeMs?: number } {
  const fields = (payload ?? {}) as { mutationId?: unknown; mutationAgeMs?: unknown };
  if (fields.mutationId === undefined) {
    if (fields.mutationAgeMs !== undefined) throw new TrussError("INVALID_PAYLOAD", `"mutationAgeMs" needs a "mutationId".`);
    return {};
  }
  const mutationId = requireString(payload, "mutationId", MAX_MUTATION_ID_LENGTH);
  const age = requireInteger(payload, "mutationAgeMs", { optional: true });
  return Number.isNaN(age) ? { mutationId } : { mutationId, mutationAgeMs: age };
}
