import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { paymentSchema } from "../catalog.js";
import { HttpError, notFound, parseInput } from "../http-errors.js";
import { companyTopic, projectTopic } from "../topics.js";
import type { RouteContext } from "./context.js";

const idParams = z.object({ id: z.string() });
const payBody = z.object({ method: paymentSchema.shape.method.default("bank_transfer") });

/**
 * Invoices, for staff only. Paying one sends `invoice:paid` and
 * `payment:processed` to the `company:invoices` feed, and the project's new
 * spend (`project:updated`) to the project's topic.
 */
export function registerInvoiceRoutes(api: FastifyInstance, { repos, access }: RouteContext): void {
  api.get("/invoices", async (request) => {
    await access.require(request.principal, { action: "invoice:read" });
    return repos.invoices.list(request.principal.companyId);
  });

  api.post("/invoices/:id/pay", async (request) => {
    const { id } = parseInput(idParams, request.params);
    const { companyId, userId } = request.principal;
    await access.require(request.principal, { action: "invoice:pay" });
    const { method } = parseInput(payBody, request.body);
    if (!(await repos.invoices.get(companyId, id))) throw notFound("invoice", id);
    const paid = await repos.invoices.pay(companyId, id, method, userId, ({ invoice, payment, project }, out) => {
      const feed = out.toTopic(companyId, companyTopic("invoices"));
      feed.emit("invoice:paid", invoice);
      feed.emit("payment:processed", payment);
      if (project) out.toTopic(companyId, projectTopic(project.id)).emit("project:updated", project);
    });
    if (!paid) throw new HttpError(409, "ALREADY_PAID", `Invoice ${id} is already paid.`);
    return paid;
  });
}
