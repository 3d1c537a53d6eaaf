import type { PresenceScope, TrussClient } from "@truss/client";
import { SharedSubscriptions, type Hold } from "./shared-subscriptions.js";

/** A document by kind and id. */
export interface DocumentRef {
  type: string;
  id: string;
}

/** What each kind of shared subscription is known by. */
export interface SharedRefs {
  /** Topics, by name. */
  topics: string;
  /** Watched documents. */
  documents: DocumentRef;
  /** Presence in a topic or document, joined with the state last given for it. */
  presence: PresenceScope;
}

/** Shared subscriptions by kind. */
type SubscriptionsByKind = { readonly [K in keyof SharedRefs]: SharedSubscriptions<SharedRefs[K]> };

/** The subscriptions the components of one client share, by kind. */
export type ClientShares = SubscriptionsByKind & {
  /** The state each scope's presence joins with (the latest a component gave). */
  readonly presenceStates: Map<string, unknown>;
};

const byClient = new WeakMap<TrussClient<any>, ClientShares>();

/** The key a document is known by here. */
export const documentKey = ({ type, id }: DocumentRef): string => JSON.stringify([type, id]);

/** The key a presence scope is known by here. */
export const scopeKey = (scope: PresenceScope): string => ("topic" in scope ? JSON.stringify([scope.topic]) : documentKey(scope));

/** The shared subscriptions of `client`, made on first use and kept as long as the client. */
export function sharesOf(client: TrussClient<any>): ClientShares {
  let shares = byClient.get(client);
  if (shares) return shares;
  const topics = new SharedSubscriptions<string>(
    (topic) => topic,
    (topic) => client.subscribe(topic),
    (topic) => client.unsubscribe(topic),
  );
  const documents = new SharedSubscriptions<DocumentRef>(
    documentKey,
    ({ type, id }) => client.documents.watch(type, id),
    ({ type, id }) => client.documents.unwatch(type, id),
  );
  // Presence in a scope stands on the scope's subscription: the join holds it, and lets go after leaving.
  const bases = new Map<string, Hold>();
  const presenceStates = new Map<string, unknown>();
  const presence = new SharedSubscriptions<PresenceScope>(
    scopeKey,
    async (scope) => {
      const base = "topic" in scope ? topics.hold(scope.topic) : documents.hold(scope);
      bases.set(scopeKey(scope), base);
      await base.answer;
      await client.presence.in(scope).join(presenceStates.get(scopeKey(scope)) ?? null);
    },
    async (scope) => {
      // Taken now: a new join of the scope may hold its own base before this leave is answered.
      const base = bases.get(scopeKey(scope));
      bases.delete(scopeKey(scope));
      presenceStates.delete(scopeKey(scope));
      try {
        await client.presence.in(scope).leave();
      } finally {
        base?.release();
      }
    },
  );
  client.onDropped((drop) => (drop.kind === "topic" ? topics.drop(drop.topic, drop.error) : documents.drop(drop, drop.error)));
  // Its session passed to another user or company: the client let go of what it held, and every hook says why.
  client.onStatus((status, { reason }) => {
    if (status === "closed" && reason?.code === "AUTH_PRINCIPAL_MISMATCH") for (const kind of [topics, documents, presence]) kind.dropAll(reason);
  });
  shares = { topics, documents, presence, presenceStates };
  byClient.set(client, shares);
  return shares;
}

/** One kind of `client`'s shared subscriptions. */
export function sharedOf<K extends keyof SharedRefs>(client: TrussClient<any>, kind: K): SharedSubscriptions<SharedRefs[K]> {
  const byKind: SubscriptionsByKind = sharesOf(client);
  return byKind[kind];
}
