import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { InsufficientStockError } from "../data/index.js";
import { HttpError, notFound, parseInput } from "../http-errors.js";
import { notification } from "../notifications.js";
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
export function registerInventoryRoutes(api: FastifyInstance, { repos, access }: RouteContext): void {
  const inventory = companyTopic("inventory");

  api.get("/inventory", async (request) => {
    await access.require(request.principal, { action: "inventory:read" });
    return repos.inventory.list(request.principal.companyId);
  });

  api.post("/inventory", async (request, reply) => {
    const { companyId } = request.principal;
    await access.require(request.principal, { action: "inventory:write" });
    const fields = parseInput(createBody, request.body);
    if ((await repos.inventory.list(companyId)).some((item) => item.sku === fields.sku)) {
      throw new HttpError(409, "DUPLICATE_SKU", `Your company already has an item with SKU ${fields.sku}.`);
    }
    const item = await repos.inventory.create(companyId, fields, (added, out) => out.toTopic(companyId, inventory).emit("item:added", added));
    return reply.code(201).send(item);
  });

  api.post("/inventory/:id/adjust", async (request) => {
    const { id } = parseInput(idParams, request.params);
    const { companyId, userId } = request.principal;
    await access.require(request.principal, { action: "inventory:write" });
    const { delta, reason } = parseInput(adjustBody, request.body);
    const managers = await repos.users.managers(companyId);
    let change;
    try {
      // The new quantity and its events commit together.
      change = await repos.inventory.adjust(companyId, id, delta, ({ item, previousQuantity }, out) => {
        const staff = out.toTopic(companyId, inventory);
        staff.emit("stock:updated", { item, delta, reason, updatedBy: userId });
        if (previousQuantity > item.reorderLevel && item.quantity <= item.reorderLevel) {
          // Enough to get back to twice the reorder level, a common rule of thumb.
          const suggestedQuantity = Math.max(1, item.reorderLevel * 2 - item.quantity);
          staff.emit("reorder:triggered", { item, suggestedQuantity });
          for (const manager of managers) {
            out
              .toUser(companyId, manager.id)
              .emit(
                "notification:new",
                notification("stock", `Reorder ${item.name}`, `${item.quantity} ${item.unit} left (reorder level ${item.reorderLevel}); suggested order: ${suggestedQuantity} ${item.unit}.`),
              );
          }
        }
      });
    } catch (error) {
      if (error instanceof InsufficientStockError) throw new HttpError(409, "INSUFFICIENT_STOCK", error.message);
      throw error;
    }
    if (!change) throw notFound("inventory item", id);
    return change.item;
  });
}
