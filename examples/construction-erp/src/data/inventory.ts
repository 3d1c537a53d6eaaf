import type { InventoryItem } from "../catalog.js";
import type { Db } from "../db.js";
import { newId } from "./ids.js";

const COLUMNS = "id, sku, name, unit, quantity, reorder_level AS reorderLevel, location, updated_at AS updatedAt";

/** The result of a stock adjustment. */
export interface StockChange {
  item: InventoryItem;
  /** The quantity before the change. */
  previousQuantity: number;
}

/** Thrown when an adjustment would take stock below zero. */
export class InsufficientStockError extends Error {
  override readonly name = "InsufficientStockError";
}

/** Stock items, each call scoped to one company. */
export function createInventory(db: Db, now: () => number = Date.now) {
  const list = db.prepare<[string], InventoryItem>(`SELECT ${COLUMNS} FROM inventory_items WHERE company_id = ? ORDER BY name`);
  const get = db.prepare<[string, string], InventoryItem>(`SELECT ${COLUMNS} FROM inventory_items WHERE company_id = ? AND id = ?`);
  const insert = db.prepare(
    "INSERT INTO inventory_items (id, company_id, sku, name, unit, quantity, reorder_level, location, updated_at) VALUES (@id, @companyId, @sku, @name, @unit, @quantity, @reorderLevel, @location, @updatedAt)",
  );
  const setQuantity = db.prepare("UPDATE inventory_items SET quantity = ?, updated_at = ? WHERE company_id = ? AND id = ?");

  const adjust = db.transaction((companyId: string, id: string, delta: number): StockChange | undefined => {
    const current = get.get(companyId, id);
    if (!current) return undefined;
    const quantity = current.quantity + delta;
    if (quantity < 0) {
      throw new InsufficientStockError(`Only ${current.quantity} ${current.unit} of ${current.name} in stock; cannot take ${-delta}.`);
    }
    setQuantity.run(quantity, now(), companyId, id);
    return { item: get.get(companyId, id)!, previousQuantity: current.quantity };
  });

  return {
    list: (companyId: string) => list.all(companyId),
    get: (companyId: string, id: string) => get.get(companyId, id),
    /** Adds an item; rejects (SQLite constraint) when the company already has the SKU. */
    create(companyId: string, fields: Omit<InventoryItem, "id" | "updatedAt">): InventoryItem {
      const id = newId("s");
      insert.run({ ...fields, id, companyId, updatedAt: now() });
      return get.get(companyId, id)!;
    },
    /**
     * Changes the quantity by `delta` in one transaction; `undefined` when the
     * company has no such item.
     * @throws InsufficientStockError when the stock would go negative.
     */
    adjust: (companyId: string, id: string, delta: number): StockChange | undefined => adjust(companyId, id, delta),
  };
}

/** See {@link createInventory}. */
export type Inventory = ReturnType<typeof createInventory>;
