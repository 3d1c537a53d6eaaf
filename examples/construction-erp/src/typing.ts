/**
 * The `user:typing` relay, shared by the ERP and the Express and NestJS
 * examples so the hint reaches the same people on every framework.
 *
 * @module
 */
import { TrussError, type RealtimeEngine } from "@truss/core";
import type { AsyncErpAccess, ErpAccess } from "./access.js";
import type { ErpCatalog } from "./catalog.js";
import { projectTopic } from "./topics.js";

/**
 * Registers the `user:typing` handler: the hint goes to the topic of the
 * document's project, whose subscribers are the people who may read it (the
 * sender's own devices included). The engine validated the payload against
 * the catalog; the user id comes from the verified token. A document the
 * sender may not read is refused with the policy's code; a document of no
 * project gets no typing hints.
 */
export function relayTyping(engine: RealtimeEngine<ErpCatalog>, access: ErpAccess | AsyncErpAccess): void {
  engine.handle("user:typing", async (data, { principal }) => {
    const request = await access.documentRequest(principal.companyId, "document:read", data.type, data.id);
    const decision = await access.decide(principal, request);
    if (decision !== true) throw new TrussError(decision.code, decision.message);
    if (request.project) engine.toTopic(principal.companyId, projectTopic(request.project)).emit("user:typing", { ...data, userId: principal.userId });
  });
}
