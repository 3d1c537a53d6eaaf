import type { DocumentKey } from "../documents/store.js";
import { PROTOCOL_EVENTS } from "@truss/protocol";
import type { Connection } from "./connection.js";
import { requireInteger, requireObject, requireString, type EventHandler } from "./dispatch.js";
import type { DocumentService } from "./documents.js";
import type { InboxService } from "./inbox.js";
import type { PresenceService } from "./presence.js";

/** What the protocol's client events are served by. */
export interface ProtocolServices {
  refreshAuth(connection: Connection, token: string): Promise<{ expiresAt: number | null }>;
  presence: PresenceService;
  inbox: InboxService;
  documents: DocumentService;
}

/**
 * Registers the handlers of the protocol's client events (`auth:refresh`,
 * `inbox:ack`, `presence:list`, `document:*`). Each validates its payload by
 * hand, and every document key takes its company from the principal, never
 * from the payload.
 */
export function registerProtocolHandlers(handlers: Map<string, EventHandler>, services: ProtocolServices): void {
  const key = (connection: Connection, payload: unknown): DocumentKey => ({
    companyId: connection.principal.companyId,
    type: requireString(payload, "type"),
    id: requireString(payload, "id"),
  });
  const writer = (connection: Connection) => ({ userId: connection.principal.userId, socketId: connection.socket.id });
  const on = (event: string, handler: EventHandler) => handlers.set(event, handler);

  on(PROTOCOL_EVENTS.authRefresh, (connection, payload) => services.refreshAuth(connection, requireString(payload, "token", 16_384)));
  on(PROTOCOL_EVENTS.inboxAck, async (connection, payload) => {
    await services.inbox.ack(connection.principal, (payload as { ids?: unknown } | undefined)?.ids);
  });
  on(PROTOCOL_EVENTS.presenceList, async (connection) => ({
    users: await services.presence.list(connection.principal.companyId),
  }));
  on(PROTOCOL_EVENTS.documentGet, async (connection, payload) => ({
    document: await services.documents.get(key(connection, payload)),
  }));
  on(PROTOCOL_EVENTS.documentUpdate, (connection, payload) =>
    services.documents.update(
      key(connection, payload),
      { baseVersion: requireInteger(payload, "baseVersion"), changes: requireObject(payload, "changes") },
      writer(connection),
    ),
  );
  on(PROTOCOL_EVENTS.documentHistory, async (connection, payload) => {
    const limit = requireInteger(payload, "limit", { min: 1, optional: true });
    return { versions: await services.documents.history(key(connection, payload), Number.isNaN(limit) ? undefined : limit) };
  });
  on(PROTOCOL_EVENTS.documentRollback, async (connection, payload) => ({
    document: await services.documents.rollback(key(connection, payload), requireInteger(payload, "toVersion", { min: 1 }), writer(connection)),
  }));
}
