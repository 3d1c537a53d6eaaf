/**
 * The login and this tab's identity. Both live in `sessionStorage`: every
 * tab is its own session and its own Truss device, so two tabs can be two
 * people, or one person on two devices, and a reload keeps both.
 */
import type { Role } from "../src/seed.js";
import { createApi } from "./api.js";

/** A logged-in user, as `POST /api/login` returns it. */
export interface Session {
  token: string;
  user: { id: string; companyId: string; name: string; email: string; role: Role; title: string };
  company: { id: string; name: string };
}

const SESSION_KEY = "erp:session";
const DEVICE_KEY = "erp:device";

/** The stored session, or `null` when this tab is logged out. */
export function storedSession(): Session | null {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "null") as Session | null;
  } catch {
    return null;
  }
}

/** Logs in and stores the session for this tab. */
export async function logIn(email: string, password: string): Promise<Session> {
  const session = await createApi()<Session>("/login", { body: { email, password } });
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  return session;
}

/** Forgets the session (the device id stays: it is still the same tab). */
export function logOut(): void {
  sessionStorage.removeItem(SESSION_KEY);
}

/**
 * This tab's device id, named after the browser so the presence list reads
 * "Chrome", "Firefox", "Safari": `chrome-4f9a1c`.
 */
export function deviceId(): string {
  let id = sessionStorage.getItem(DEVICE_KEY);
  if (!id) {
    id = `${browserName()}-${crypto.randomUUID().slice(0, 6)}`;
    sessionStorage.setItem(DEVICE_KEY, id);
  }
  return id;
}

function browserName(): string {
  const agent = navigator.userAgent;
  if (/Edg\//.test(agent)) return "edge";
  if (/Firefox\//.test(agent)) return "firefox";
  if (/Chrome\/|Chromium\//.test(agent)) return "chrome";
  if (/Safari\//.test(agent)) return "safari";
  return "browser";
}
