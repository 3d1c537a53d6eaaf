/**
 * The ERP's data of record, as the routes see it: the same tables on the
 * embedded SQLite file or on PostgreSQL, behind one asynchronous interface.
 * A write that announces something takes an `announce` callback: it runs
 * inside the write's transaction, and what it emits is written to the
 * database's outbox table in that transaction, so the event is published
 * (by the relay, after commit) if and only if the change commits.
 *
 * @module
 */
import type { OutboxEmitOptions, OutboxSource, OutboxUserEmitOptions } from "@truss/core";
import type { ServerEventData, ServerEventName } from "@truss/protocol";
import type { ErpCatalog, Expense, InventoryItem, Invoice, Payment, Project, Task } from "../catalog.js";
import type { Company, NewSentNotification, PushSubscriptionRecord, SentNotification, User } from "../data/index.js";
import type { Decision, NewExpense } from "../data/expenses.js";
import type { StockChange } from "../data/inventory.js";
import type { ProjectChanges } from "../data/projects.js";
import type { DocumentSummary } from "../sqlite-document-store.js";

/** One event, typed by the ERP's catalog, written to the outbox; a user's emitter also takes `undelivered`. */
export interface AnnouncementEmitter<Options extends OutboxEmitOptions = OutboxEmitOptions> {
  /** Records `event` for the target; published once the transaction commits. */
  emit<E extends ServerEventName<ErpCatalog>>(event: E, data: ServerEventData<ErpCatalog, E>, options?: Options): void;
}

/** The outbox inside one write's transaction: the engine's emitters, recorded instead of sent. */
export interface Announcer {
  /** To every device of one user, through their inbox; `{ undelivered }` says whether a missed one is pushed or e-mailed. */
  toUser(companyId: string, userId: string): AnnouncementEmitter<OutboxUserEmitOptions>;
  /** To the subscribers of a topic. */
  toTopic(companyId: string, topic: string): AnnouncementEmitter;
}

/**
 * Says what a committed write announces. Called inside the transaction with
 * the write's result (only when it changed something); a throw rolls the
 * write back and publishes nothing.
 */
export type Announce<T> = (result: T, out: Announcer) => void;

/** Called inside every announcing transaction after its writes and announcements, before commit; a throw rolls it back. */
export type BeforeCommit = (operation: string) => void;

/** A new inventory item's fields. */
export type NewInventoryItem = Omit<InventoryItem, "id" | "updatedAt">;

/** Every table's queries, each scoped to one company, on either database. */
export interface ErpData {
  /** Which database holds the data. */
  readonly kind: "sqlite" | "postgres";
  users: {
    findForLogin(email: string): Promise<(User & { passwordHash: string }) | undefined>;
    get(companyId: string, id: string): Promise<User | undefined>;
    remove(companyId: string, id: string): Promise<boolean>;
    list(companyId: string): Promise<User[]>;
    managers(companyId: string): Promise<User[]>;
    company(companyId: string): Promise<Company | undefined>;
  };
  projects: {
    list(companyId: string): Promise<Project[]>;
    get(companyId: string, id: string): Promise<Project | undefined>;
    create(companyId: string, fields: Pick<Project, "name" | "site" | "status" | "budget">, announce?: Announce<Project>): Promise<Project>;
    update(companyId: string, id: string, changes: ProjectChanges, announce?: Announce<Project>): Promise<Project | undefined>;
    remove(companyId: string, id: string, announce?: Announce<true>): Promise<boolean>;
  };
  assignments: {
    projectsOf(companyId: string, userId: string): Promise<string[]>;
  };
  documentProjects: {
    projectOf(companyId: string, type: string, id: string): Promise<string | null>;
    all(companyId: string): Promise<Map<string, string>>;
  };
  tasks: {
    list(companyId: string): Promise<Task[]>;
    get(companyId: string, id: string): Promise<Task | undefined>;
    create(companyId: string, fields: Pick<Task, "projectId" | "title" | "assigneeId" | "dueDate">, announce?: Announce<Task>): Promise<Task>;
    assign(companyId: string, id: string, assigneeId: string, announce?: Announce<Task>): Promise<Task | undefined>;
  };
  expenses: {
    list(companyId: string): Promise<Expense[]>;
    get(companyId: string, id: string): Promise<Expense | undefined>;
    create(companyId: string, fields: NewExpense, announce?: Announce<Expense>): Promise<Expense>;
    /** Once per mutation id of its submitter; a repeat returns the first expense with `duplicate` and announces nothing. */
    createOnce(companyId: string, fields: NewExpense, mutationId: string, announce?: Announce<Expense>): Promise<{ expense: Expense; duplicate: boolean }>;
    /** Decides a pending expense (and books an approval against its project); `undefined` when not the company's or not pending. */
    decide(
      companyId: string,
      id: string,
      decision: Decision,
      announce?: Announce<{ expense: Expense; project: Project | undefined }>,
    ): Promise<{ expense: Expense; project: Project | undefined } | undefined>;
  };
  invoices: {
    list(companyId: string): Promise<Invoice[]>;
    get(companyId: string, id: string): Promise<Invoice | undefined>;
    pay(
      companyId: string,
      id: string,
      method: Payment["method"],
      processedBy: string,
      announce?: Announce<PaidInvoice>,
    ): Promise<PaidInvoice | undefined>;
  };
  inventory: {
    list(companyId: string): Promise<InventoryItem[]>;
    get(companyId: string, id: string): Promise<InventoryItem | undefined>;
    /** Adds an item; rejects when the company already has the SKU. */
    create(companyId: string, fields: NewInventoryItem, announce?: Announce<InventoryItem>): Promise<InventoryItem>;
    /** @throws InsufficientStockError when the stock would go negative. */
    adjust(companyId: string, id: string, delta: number, announce?: Announce<StockChange>): Promise<StockChange | undefined>;
  };
  documents: {
    /** The company's documents, for `GET /api/documents`. */
    list(companyId: string): Promise<DocumentSummary[]>;
  };
  /** The browsers that registered for Web Push, one row per push endpoint. */
  pushSubscriptions: {
    /** The user's subscriptions, newest first. */
    list(companyId: string, userId: string): Promise<PushSubscriptionRecord[]>;
    /** Registers (or renews) a browser for the user, taking it from whoever had it; keeps the user's newest ten. */
    save(companyId: string, userId: string, subscription: PushSubscriptionRecord): Promise<void>;
    /** Forgets one of the user's subscriptions; `false` when it was not theirs. */
    remove(companyId: string, userId: string, endpoint: string): Promise<boolean>;
  };
  /** Messages no device took, sent by e-mail or Web Push instead. */
  notificationsSent: {
    /** Records one once per inbox message: `false` when the message already has its row. */
    record(companyId: string, row: NewSentNotification): Promise<boolean>;
    /** Whether the message was already sent to its user. */
    has(companyId: string, userId: string, messageId: string): Promise<boolean>;
    /** The latest of the company, or of one of its users, newest first. */
    list(companyId: string, userId?: string): Promise<SentNotification[]>;
  };
  /** The outbox table as the relay reads it. */
  outboxSource(): OutboxSource;
  /** Rows still waiting in the outbox (failed ones included), for tests and operators. */
  pendingOutboxRows(): Promise<number>;
  /** Closes the connection (the SQLite file) or the pool. */
  close(): Promise<void>;
}

/** An invoice paid in full, its payment, and its project's new spend. */
export interface PaidInvoice {
  invoice: Invoice;
  payment: Payment;
  project: Project | undefined;
}
