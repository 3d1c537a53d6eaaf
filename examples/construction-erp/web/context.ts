import type { TrussClient } from "@truss/client";
import type { ErpCatalog } from "../src/catalog.js";
import type { Role } from "../src/seed.js";
import type { Api } from "./api.js";
import type { OfflineCache } from "./offline-cache.js";
import type { Session } from "./session.js";

/** A colleague from the company directory. */
export interface Person {
  id: string;
  name: string;
  title: string;
  role: Role;
}

/** What every panel gets: the live connection, the REST API, who is logged in, who their colleagues are, and what this browser cached for offline use. */
export interface DashboardContext {
  client: TrussClient<ErpCatalog>;
  api: Api;
  session: Session;
  directory: Directory;
  cache: OfflineCache;
}

/** The API path of the directory, also its key in the offline cache. */
const DIRECTORY_KEY = "/users";

/**
 * The company's people by id, loaded once over REST. Panels render before
 * it arrives (listeners must be registered before the first await to see
 * replayed messages), so they re-render when it changes. The last list
 * loaded is cached, so names show offline too.
 */
export class Directory {
  private people = new Map<string, Person>();
  private readonly listeners = new Set<() => void>();

  constructor(private readonly cache?: OfflineCache) {
    const cached = cache?.get<Person[]>(DIRECTORY_KEY);
    if (cached) this.people = new Map(cached.map((person) => [person.id, person]));
  }

  /** Loads the directory and tells the panels. */
  async load(api: Api): Promise<void> {
    const people = await api<Person[]>(DIRECTORY_KEY);
    this.cache?.set(DIRECTORY_KEY, people);
    this.people = new Map(people.map((person) => [person.id, person]));
    for (const listener of this.listeners) listener();
  }

  /** A person's name, or their id until the directory is loaded. */
  nameOf(userId: string): string {
    return this.people.get(userId)?.name ?? userId;
  }

  /** A person, when known. */
  get(userId: string): Person | undefined {
    return this.people.get(userId);
  }

  /** Calls `listener` after each load. */
  onChange(listener: () => void): void {
    this.listeners.add(listener);
  }
}
