/** Client layouts shared by the scenarios. */

/**
 * `companies` companies of `perCompany` users, one device each, listed
 * round-robin over the companies so every company fills up evenly.
 */
export function clientsOf({ companies, perCompany, prefix = "" }) {
  const clients = [];
  for (let user = 0; user < perCompany; user++) {
    for (let company = 0; company < companies; company++) {
      clients.push({ userId: `${prefix}u${company}-${user}`, companyId: `${prefix}c${company}` });
    }
  }
  return clients;
}

/** The company ids of a layout. */
export const companyIds = (companies, prefix = "") => Array.from({ length: companies }, (_, index) => `${prefix}c${index}`);
