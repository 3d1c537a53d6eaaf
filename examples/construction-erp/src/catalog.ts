/**
 * The construction ERP's event catalog: every application event the server
 * emits and every event a client may send, each with its zod schema. The
 * server, the dashboard and the other example apps import their types from
 * here, so a renamed field breaks the build instead of a screen.
 *
 * `document:updated` and `presence:update` are not listed: they belong to the
 * Truss protocol and the engine emits them itself.
 *
 * @module
 */
import { defineEvents } from "@truss/protocol";
import { z } from "zod";

/** A construction project with its budget and what has been spent against it. */
export const projectSchema = z.object({
  id: z.string(),
  name: z.string(),
  site: z.string(),
  status: z.enum(["planned", "active", "on_hold", "completed"]),
  budget: z.number().nonnegative(),
  spent: z.number().nonnegative(),
  updatedAt: z.number().int(),
});

/** A task on a project, optionally assigned to one user of the company. */
export const taskSchema = z.object({
  id: z.string(),
  projectId: z.string(),
  title: z.string(),
  status: z.enum(["open", "in_progress", "done"]),
  assigneeId: z.string().nullable(),
  dueDate: z.string().nullable(),
  updatedAt: z.number().int(),
});

/** An expense a crew member submitted against a project, and its approval state. */
export const expenseSchema = z.object({
  id: z.string(),
  projectId: z.string(),
  submittedBy: z.string(),
  description: z.string(),
  amount: z.number().positive(),
  status: z.enum(["pending", "approved", "rejected"]),
  decidedBy: z.string().nullable(),
  decidedAt: z.number().int().nullable(),
  reason: z.string().nullable(),
  createdAt: z.number().int(),
});

/** A supplier's invoice on a project. */
export const invoiceSchema = z.object({
  id: z.string(),
  projectId: z.string(),
  number: z.string(),
  vendor: z.string(),
  amount: z.number().positive(),
  status: z.enum(["open", "paid"]),
  paidAt: z.number().int().nullable(),
});

/** A payment that settled an invoice. */
export const paymentSchema = z.object({
  id: z.string(),
  invoiceId: z.string(),
  amount: z.number().positive(),
  method: z.enum(["bank_transfer", "card", "check"]),
  processedBy: z.string(),
  processedAt: z.number().int(),
});

/** A stock item in the company's yard or warehouse. */
export const inventoryItemSchema = z.object({
  id: z.string(),
  sku: z.string(),
  name: z.string(),
  unit: z.string(),
  quantity: z.number().int().nonnegative(),
  reorderLevel: z.number().int().nonnegative(),
  location: z.string(),
  updatedAt: z.number().int(),
});

/** A message for one user's notification list. */
export const notificationSchema = z.object({
  id: z.string(),
  kind: z.enum(["expense", "task", "stock", "invoice"]),
  title: z.string(),
  body: z.string(),
  createdAt: z.number().int(),
});

/**
 * A new expense as its submitter sends it: over REST (`POST /api/expenses`)
 * or as the `expense:submit` event, which the dashboard queues in its outbox
 * while offline.
 */
export const expenseSubmissionSchema = z.object({
  projectId: z.string().min(1).max(128),
  description: z.string().trim().min(1).max(200),
  amount: z.number().positive().max(1e9),
});

/** The events of the construction ERP. */
export const catalog = defineEvents({
  server: {
    "project:created": projectSchema,
    "project:updated": projectSchema,
    "project:deleted": z.object({ id: z.string() }),
    "task:assigned": z.object({ task: taskSchema, assignedBy: z.string() }),
    "invoice:paid": invoiceSchema,
    "payment:processed": paymentSchema,
    "expense:approved": expenseSchema,
    "expense:rejected": expenseSchema,
    "stock:updated": z.object({ item: inventoryItemSchema, delta: z.number().int(), reason: z.string(), updatedBy: z.string() }),
    "item:added": inventoryItemSchema,
    "reorder:triggered": z.object({ item: inventoryItemSchema, suggestedQuantity: z.number().int().positive() }),
    "notification:new": notificationSchema,
  },
  client: {
    /**
     * Submits an expense; the handler answers with the created expense. Sent
     * from the dashboard's outbox with a mutation id, so a resend after a
     * lost answer or a reload answers with the same expense and adds no row.
     */
    "expense:submit": expenseSubmissionSchema,
  },
});

/** The catalog's type, for `createRealtimeEngine<ErpCatalog>` and `connect<ErpCatalog>`. */
export type ErpCatalog = typeof catalog;

/** A project, as the API returns it and events carry it. */
export type Project = z.infer<typeof projectSchema>;
/** A task. */
export type Task = z.infer<typeof taskSchema>;
/** An expense. */
export type Expense = z.infer<typeof expenseSchema>;
/** An invoice. */
export type Invoice = z.infer<typeof invoiceSchema>;
/** A payment. */
export type Payment = z.infer<typeof paymentSchema>;
/** An inventory item. */
export type InventoryItem = z.infer<typeof inventoryItemSchema>;
/** A new expense, as submitted. */
export type ExpenseSubmission = z.input<typeof expenseSubmissionSchema>;
/** A notification. */
export type Notification = z.infer<typeof notificationSchema>;
