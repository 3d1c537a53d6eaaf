import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { InsufficientStockError } from "../data/index.js";
import { HttpError, notFound, parseInput } from "../http-errors.js";
import { notification, sendToUser } from "../notifications.js";
import { companyTopic } from "../topics.js";
import type { RouteContext } from "./context.js";

const idParams = z.object({ id: z.string() });
const createBody = z.object({
  sku: z.string().trim().min(1).max(40),
  name: z.string().trim().min(1).max(120),
  unit: z.string().trim().min(1).max(20),
  quantity: z.number().int().nonnegative(),
  reorderLevel: z.number().int().nonnegative(),
  location: z.string().trim().max(80).default(""),
});
const adjustBody = z.object({
  delta: z
    .number()
    .int()
    .refine((delta) => delta !== 0, "must not be 0")
    .refine((delta) => Math.abs(delta) <= 1_000_000, "is implausibly large"),
  reason: z.string().trim().max(200).default("manual count"),
});

/**
 * Stock, for staff. Adding an item sends `item:added`; every adjustment sends
 * `stock:updated`; an adjustment that takes an item from above its reorder
 * level to at or below it sends `reorder:triggered` and a durable
 * notification to the managers. Only the crossing triggers, so a crew drawing
 * stock all day does not reorder ten times. The events go to the
 * `company:inventory` topic, which subcontractors cannot subscribe to.
 */
export function registerInventoryRoutes(api: FastifyInstance, { repos, access, realtime }: RouteContext): void {
  const inventoryTopic = (companyId: string) => realtime.toTopic(companyId, companyTopic("inventory"));

  api.get("/inventory", async (request) => {
    access.require(request.principal, { action: "inventory:read" });
    return repos.inventory.list(request.principal.companyId);
  });

  api.post("/inventory", async (request, reply) => {
    const { companyId } = request.principal;
    access.require(request.principal, { action: "inventory:write" });
    const fields = parseInput(createBody, request.body);
    if (repos.inventory.list(companyId).some((item) => item.sku === fields.sku)) {
      throw new HttpError(409, "DUPLICATE_SKU", `Your company already has an item with SKU ${fields.sku}.`);
    }
    const item = repos.inventory.create(companyId, fields);
    inventoryTopic(companyId).emit("item:added", item);
    return reply.code(201).send(item);
  });

  api.post("/inventory/:id/adjust", async (request) => {
    const { id } = parseInput(idParams, request.params);
    const { companyId, userId } = request.principal;
    access.require(request.principal, { action: "inventory:write" });
    const { delta, reason } = parseInput(adjustBody, request.body);
    let change;
    try {
      change = repos.inventory.adjust(companyId, id, delta);
    } catch (error) {
      if (error instanceof InsufficientStockError) throw new HttpError(409, "INSUFFICIENT_STOCK", error.message);
      throw error;
    }
    if (!change) throw notFound("inventory item", id);
    const { item, previousQuantity } = change;
    const staff = inventoryTopic(companyId);
    staff.emit("stock:updated", { item, delta, reason, updatedBy: userId });
    if (previousQuantity > item.reorderLevel && item.quantity <= item.reorderLevel) {
      // Enough to get back to twice the reorder level, a common rule of thumb.
      const suggestedQuantity = Math.max(1, item.reorderLevel * 2 - item.quantity);
      staff.emit("reorder:triggered", { item, suggestedQuantity });
      for (const manager of repos.users.managers(companyId)) {
        await sendToUser(
          realtime,
          request.log,
          { companyId, userId: manager.id },
          "notification:new",
          notification("stock", `Reorder ${item.name}`, `${item.quantity} ${item.unit} left (reorder level ${item.reorderLevel}); suggested order: ${suggestedQuantity} ${item.unit}.`),
        );
      }
    }
    return item;
  });
}
