import type { Invoice, Payment, Project } from "../catalog.js";
import type { Db } from "../db.js";
import { newId } from "./ids.js";
import { createProjects } from "./projects.js";

const COLUMNS = "id, project_id AS projectId, number, vendor, amount, status, paid_at AS paidAt";
const PAYMENT_COLUMNS = "id, invoice_id AS invoiceId, amount, method, processed_by AS processedBy, processed_at AS processedAt";

/** Invoices and their payments, each call scoped to one company. */
export function createInvoices(db: Db, now: () => number = Date.now) {
  const list = db.prepare<[string], Invoice>(`SELECT ${COLUMNS} FROM invoices WHERE company_id = ? ORDER BY number`);
  const get = db.prepare<[string, string], Invoice>(`SELECT ${COLUMNS} FROM invoices WHERE company_id = ? AND id = ?`);
  const markPaid = db.prepare("UPDATE invoices SET status = 'paid', paid_at = ? WHERE company_id = ? AND id = ? AND status = 'open'");
  const insertPayment = db.prepare(
    "INSERT INTO payments (id, company_id, invoice_id, amount, method, processed_by, processed_at) VALUES (@id, @companyId, @invoiceId, @amount, @method, @processedBy, @processedAt)",
  );
  const getPayment = db.prepare<[string, string], Payment>(`SELECT ${PAYMENT_COLUMNS} FROM payments WHERE company_id = ? AND id = ?`);

  const projects = createProjects(db, now);
  const pay = db.transaction((companyId: string, id: string, method: Payment["method"], processedBy: string) => {
    const processedAt = now();
    if (markPaid.run(processedAt, companyId, id).changes === 0) return undefined;
    const invoice = get.get(companyId, id)!;
    const paymentId = newId("pay");
    insertPayment.run({ id: paymentId, companyId, invoiceId: id, amount: invoice.amount, method, processedBy, processedAt });
    const project = projects.addSpent(companyId, invoice.projectId, invoice.amount);
    return { invoice, payment: getPayment.get(companyId, paymentId)!, project };
  });

  return {
    list: (companyId: string) => list.all(companyId),
    get: (companyId: string, id: string) => get.get(companyId, id),
    /**
     * Pays an open invoice in full, records the payment and books it against
     * the project, in one transaction; `undefined` when the invoice is not the
     * company's or already paid.
     */
    pay: (
      companyId: string,
      id: string,
      method: Payment["method"],
      processedBy: string,
    ): { invoice: Invoice; payment: Payment; project: Project | undefined } | undefined => pay(companyId, id, method, processedBy),
  };
}

/** See {@link createInvoices}. */
export type Invoices = ReturnType<typeof createInvoices>;
