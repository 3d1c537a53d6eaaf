import { useCallback, useEffect, useMemo, useRef, useSyncExternalStore } from "react";
import type { PresenceScope, PresenceUser, ScopedPresenceMember, ScopePresence, TrussClient, TrussClientError } from "@truss/client";
import { useTrussClient } from "./context.js";
import { scopeKey, sharesOf } from "./shares.js";
import { PENDING, type SubscriptionState } from "./shared-subscriptions.js";

/** What `usePresence()` returns: who is online in the company. */
export interface CompanyPresence {
  /** The online users with their devices; `null` before the first list arrived. */
  users: PresenceUser[] | null;
}

/** What `usePresence(scope, state)` returns: who else is in the topic or document. */
export interface ScopedPresence {
  /** The other members (other connections, the same user's other tabs included), oldest first, with their state. */
  others: readonly ScopedPresenceMember[];
  /**
   * `pending` until the server accepted the join (and while offline),
   * `active` once in, `refused` or `dropped` (of the join, or of the
   * topic or document it stands on) with `error` saying why.
   */
  status: SubscriptionState["status"];
  /** Why, when `refused` or `dropped`. */
  error: TrussClientError | null;
}

const NOBODY: readonly ScopedPresenceMember[] = Object.freeze([]);

/**
 * Who is online in the company, kept current while mounted
 * (`client.presence.subscribe`).
 *
 * @example
 * ```tsx
 * const { users } = usePresence();
 * return <p>{users?.length ?? "…"} people online</p>;
 * ```
 */
export function usePresence(): CompanyPresence;
/**
 * Joins a topic (`{ topic: "project:p-17" }`) or a document
 * (`{ type: "site-report", id: "r-1" }`) with `state` while mounted, and
 * returns the others there with theirs. The hook subscribes to the topic
 * (or watches the document) itself, shared with the other hooks on it. A
 * new `state` (compared as JSON) is sent as an update, at most ten a second.
 *
 * @example
 * ```tsx
 * const { others } = usePresence({ type: "site-report", id: reportId }, { field: focusedField });
 * return <Avatars people={others.map((member) => member.userId)} />;
 * ```
 */
export function usePresence(scope: PresenceScope, state?: unknown): ScopedPresence;
export function usePresence(scope?: PresenceScope, state: unknown = null): CompanyPresence | ScopedPresence {
  const client = useTrussClient();
  // Each hook runs every time, so the hook order is the same whether a scope is given or not.
  const company = useCompanyPresence(scope ? null : client);
  const scoped = useScopedPresence(scope ? client : null, scope, state);
  return scope ? scoped : company;
}

function useCompanyPresence(client: TrussClient<any> | null): CompanyPresence {
  const subscribe = useCallback((onChange: () => void) => client?.presence.subscribe(() => onChange()) ?? (() => undefined), [client]);
  const users = useSyncExternalStore(subscribe, () => client?.presence.current ?? null, () => null);
  return useMemo(() => ({ users }), [users]);
}

function useScopedPresence(client: TrussClient<any> | null, scope: PresenceScope | undefined, state: unknown): ScopedPresence {
  const key = scope ? scopeKey(scope) : "";
  // A new object with the same scope each render is the same scope.
  const stableScope = useMemo(() => scope, [key]);
  const stateJson = JSON.stringify(state ?? null);
  useEffect(() => {
    if (!client || !stableScope) return;
    sharesOf(client).presenceStates.set(key, state);
    scopePresence(client, stableScope)?.update(state);
  }, [client, stableScope, stateJson]);

  const holdJoin = useCallback(
    (onChange: () => void) => {
      if (!client || !stableScope) return () => undefined;
      const shares = sharesOf(client);
      const release = [shares.presence.hold(stableScope, onChange).release];
      // The topic's or document's own state (dropped, refused) is heard too.
      const base = "topic" in stableScope ? shares.topics.hold(stableScope.topic, onChange) : shares.documents.hold(stableScope, onChange);
      release.push(base.release);
      return () => {
        for (const stop of release) stop();
      };
    },
    [client, stableScope],
  );
  const joined = useSyncExternalStore(holdJoin, () => joinState(client, stableScope), () => PENDING);

  const last = useRef(NOBODY);
  const listen = useCallback(
    (onChange: () => void) => (client && stableScope ? scopePresence(client, stableScope)?.subscribe(() => onChange()) : undefined) ?? (() => undefined),
    [client, stableScope],
  );
  // `others` is a new array each time: the one returned last is kept while it lists the same members in the same states.
  const readOthers = () => {
    const now = client && stableScope ? scopePresence(client, stableScope)?.others : undefined;
    if (!now) return NOBODY;
    if (sameMembers(last.current, now)) return last.current;
    last.current = now;
    return now;
  };
  const others = useSyncExternalStore(listen, readOthers, () => NOBODY);
  return useMemo(() => ({ others, status: joined.status, error: joined.error }), [others, joined]);
}

/** `client.presence.in(scope)`, or `null` for a malformed scope (its join reports `INVALID_PAYLOAD`). */
function scopePresence(client: TrussClient<any>, scope: PresenceScope): ScopePresence | null {
  try {
    return client.presence.in(scope);
  } catch {
    return null;
  }
}

/** The join's state, unless the topic or document under it was refused or dropped. */
function joinState(client: TrussClient<any> | null, scope: PresenceScope | undefined): SubscriptionState {
  if (!client || !scope) return PENDING;
  const shares = sharesOf(client);
  const base = "topic" in scope ? shares.topics.state(scope.topic) : shares.documents.state(scope);
  return base.error ? base : shares.presence.state(scope);
}

function sameMembers(a: readonly ScopedPresenceMember[], b: readonly ScopedPresenceMember[]): boolean {
  return a.length === b.length && a.every((member, index) => member.memberId === b[index]!.memberId && JSON.stringify(member.state) === JSON.stringify(b[index]!.state));
}
