/**
 * The login, this phone's device id and the report of the day, kept in
 * `localStorage`: a phone on site reloads the app without signal and must
 * still know who it is and which report it was on.
 */

/** A logged-in user, as the ERP's `POST /api/login` returns it. */
export interface Session {
  token: string;
  user: { id: string; companyId: string; name: string; role: string; title: string };
  company: { id: string; name: string };
}

/** The report this phone works on today, and its project. */
export interface Assignment {
  reportId: string;
  projectId: string;
  title: string;
}

const SESSION_KEY = "site:session";
const DEVICE_KEY = "site:device";
const ASSIGNMENT_KEY = "site:assignment";

function read<T>(key: string): T | null {
  try {
    return JSON.parse(localStorage.getItem(key) ?? "null") as T | null;
  } catch {
    return null;
  }
}

/** The stored session, or `null` when logged out. */
export const storedSession = (): Session | null => read<Session>(SESSION_KEY);

/** The stored assignment, or `null` before the first one was loaded. */
export const storedAssignment = (): Assignment | null => read<Assignment>(ASSIGNMENT_KEY);

/** This phone's device id, made once. */
export function deviceId(): string {
  let id = localStorage.getItem(DEVICE_KEY);
  if (!id) {
    id = `phone-${crypto.randomUUID().slice(0, 8)}`;
    localStorage.setItem(DEVICE_KEY, id);
  }
  return id;
}

/** Logs in with the ERP and keeps the session. */
export async function logIn(email: string, password: string): Promise<Session> {
  const response = await fetch("/api/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email, password }) });
  const body = (await response.json()) as Session & { error?: { message: string } };
  if (!response.ok) throw new Error(body.error?.message ?? `The server answered ${response.status}.`);
  localStorage.setItem(SESSION_KEY, JSON.stringify(body));
  return body;
}

/** Forgets the session and the assignment (the device id stays: it is the same phone). */
export function logOut(): void {
  localStorage.removeItem(SESSION_KEY);
  localStorage.removeItem(ASSIGNMENT_KEY);
}

/**
 * Today's site report of the first project the user may see: asked of the
 * ERP when online, the stored one when not.
 */
export async function loadAssignment(session: Session): Promise<Assignment | null> {
  try {
    const response = await fetch("/api/documents", { headers: { authorization: `Bearer ${session.token}` } });
    if (!response.ok) return storedAssignment();
    const documents = (await response.json()) as Array<{ type: string; id: string; title: string | null; projectId: string | null }>;
    const report = documents.find((document) => document.type === "site-report" && document.projectId);
    if (!report) return null;
    const assignment = { reportId: report.id, projectId: report.projectId!, title: report.title ?? report.id };
    localStorage.setItem(ASSIGNMENT_KEY, JSON.stringify(assignment));
    return assignment;
  } catch {
    return storedAssignment();
  }
}
