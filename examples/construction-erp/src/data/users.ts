import type { Db } from "../db.js";
import type { Role } from "../seed.js";

/** A user as the API shows them: never with the password hash. */
export interface User {
  id: string;
  companyId: string;
  name: string;
  email: string;
  role: Role;
  title: string;
}

/** A company. */
export interface Company {
  id: string;
  name: string;
}

const USER_COLUMNS = "id, company_id AS companyId, name, email, role, title";

/**
 * Users and companies. Everything but the login lookup is scoped to one
 * company, and a removed user is as absent as one that never existed.
 */
export function createUsers(db: Db, now: () => number = Date.now) {
  const byEmail = db.prepare<[string], User & { passwordHash: string }>(
    `SELECT ${USER_COLUMNS}, password_hash AS passwordHash FROM users WHERE email = ? AND removed_at IS NULL`,
  );
  const byId = db.prepare<[string, string], User>(`SELECT ${USER_COLUMNS} FROM users WHERE company_id = ? AND id = ? AND removed_at IS NULL`);
  const ofCompany = db.prepare<[string], User>(`SELECT ${USER_COLUMNS} FROM users WHERE company_id = ? AND removed_at IS NULL ORDER BY name`);
  const managersOf = db.prepare<[string], User>(
    `SELECT ${USER_COLUMNS} FROM users WHERE company_id = ? AND role = 'manager' AND removed_at IS NULL ORDER BY name`,
  );
  const markRemoved = db.prepare("UPDATE users SET removed_at = ? WHERE company_id = ? AND id = ? AND removed_at IS NULL");
  const company = db.prepare<[string], Company>("SELECT id, name FROM companies WHERE id = ?");

  return {
    /** The user with this login email (any company, never a removed one), with the password hash to check. */
    findForLogin: (email: string) => byEmail.get(email.trim()),
    /** A user of the company, or `undefined`: another company's user, or a removed one, is as absent as a missing one. */
    get: (companyId: string, id: string) => byId.get(companyId, id),
    /**
     * Removes a user from the company: they can no longer log in, and the
     * authenticator refuses their tokens. Their rows (expenses, tasks) stay.
     * `false` when the company has no such (active) user.
     */
    remove: (companyId: string, id: string): boolean => markRemoved.run(now(), companyId, id).changes > 0,
    /** The company's directory. */
    list: (companyId: string) => ofCompany.all(companyId),
    /** Who may approve the company's expenses. */
    managers: (companyId: string) => managersOf.all(companyId),
    /** The company's name and id. */
    company: (companyId: string) => company.get(companyId),
  };
}

/** See {@link createUsers}. */
export type Users = ReturnType<typeof createUsers>;
