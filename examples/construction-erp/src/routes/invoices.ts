import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { isManager } from "../auth.js";
import { paymentSchema } from "../catalog.js";
import { HttpError, forbidden, notFound, parseInput } from "../http-errors.js";
import type { RouteContext } from "./context.js";

const idParams = z.object({ id: z.string() });
const payBody = z.object({ method: paymentSchema.shape.method.default("bank_transfer") });

/**
 * Invoices. Paying one tells the company `invoice:paid`, `payment:processed`
 * and the project's new spend (`project:updated`).
 */
export function registerInvoiceRoutes(api: FastifyInstance, { repos, realtime }: RouteContext): void {
  api.get("/invoices", async (request) => repos.invoices.list(request.principal.companyId));

  api.post("/invoices/:id/pay", async (request) => {
    const { id } = parseInput(idParams, request.params);
    const { companyId, userId } = request.principal;
    if (!isManager(request.principal)) throw forbidden("pay invoices");
    const { method } = parseInput(payBody, request.body);
    if (!repos.invoices.get(companyId, id)) throw notFound("invoice", id);
    const paid = repos.invoices.pay(companyId, id, method, userId);
    if (!paid) throw new HttpError(409, "ALREADY_PAID", `Invoice ${id} is already paid.`);
    const company = realtime.toCompany(companyId);
    company.emit("invoice:paid", paid.invoice);
    company.emit("payment:processed", paid.payment);
    if (paid.project) company.emit("project:updated", paid.project);
    return paid;
  });
}
