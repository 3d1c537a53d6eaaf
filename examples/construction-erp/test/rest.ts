/**
 * REST calls against a running ERP (this one, or the Express and NestJS
 * examples built on its modules), for tests.
 */
import { DEMO_PASSWORD } from "../src/seed.js";

/** What `POST /api/login` returns. */
export interface LoggedIn {
  token: string;
  user: { id: string; companyId: string; name: string; role: string };
}

/** Logs a demo user in over REST. */
export async function login(url: string, email: string, password: string = DEMO_PASSWORD): Promise<LoggedIn> {
  const response = await fetch(`${url}/api/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  if (response.status !== 200) throw new Error(`login of ${email} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as LoggedIn;
}

/** Calls the REST API with a bearer token; resolves with the status and parsed body. */
export async function call<T = any>(url: string, token: string | null, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${url}${path}`, { method, headers, body: body === undefined ? null : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
}
