import { randomUUID } from "node:crypto";

/** A new row id: a readable prefix and enough randomness never to collide in one database. */
export function newId(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 13)}`;
}
