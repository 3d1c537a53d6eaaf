/**
 * Every room name the engine uses, and the parser of the ones a socket can
 * subscribe to. Rooms are server-decided from the verified principal: a
 * client never names one. Company and user ids are length-prefixed where
 * another id follows, so no two pairs of ids spell one room.
 *
 * @module
 */

/** The room of a company: every socket of its users, on every node. */
export const companyRoom = (companyId: string): string => `company:${companyId}`;
/**
 * The room of a company's sockets that follow its presence (`presence:list`
 * with `follow: true`): the only ones that hear `presence:update(s)`, so a
 * phone that never shows who is online is not woken for every arrival.
 */
export const companyPresenceRoom = (companyId: string): string => `company-presence:${companyId}`;
/**
 * A key for one user of one company, unambiguous for any ids: the company id
 * is length-prefixed, so no pair of ids can spell another pair's key.
 */
export const userKeyOf = (user: { companyId: string; userId: string }): string => `${user.companyId.length}:${user.companyId}:${user.userId}`;

/** The room of one topic of one company; the company id is length-prefixed, so no two pairs spell one room. */
export const topicRoom = (companyId: string, topic: string): string => `topic:${companyId.length}:${companyId}:${topic}`;

/** The room of the sockets watching one document. */
export const documentRoom = (companyId: string, type: string, id: string): string => `${documentRooms(companyId)}${type.length}:${type}:${id}`;

/**
 * The room of the sockets present in one scope of one company (see
 * `scoped-presence/`); `scope` is the scope's key. Not a subscription room:
 * {@link subscriptionOf} returns `null` for it.
 */
export const presenceRoom = (companyId: string, scope: string): string => `presence:${companyId.length}:${companyId}:${scope}`;

/** What every document room of a company starts with. */
const documentRooms = (companyId: string): string => `doc:${companyId.length}:${companyId}:`;

/** One subscription of a socket, as its room name spells it. */
export type Subscription = { kind: "topic"; topic: string } | { kind: "document"; type: string; id: string };

/**
 * The subscription a room of a company stands for, or `null` for any other
 * room (the company's, the user's, the socket's own). The inverse of
 * {@link topicRoom} and {@link documentRoom}.
 */
export function subscriptionOf(companyId: string, room: string): Subscription | null {
  const topicPrefix = topicRoom(companyId, "");
  if (room.startsWith(topicPrefix)) return { kind: "topic", topic: room.slice(topicPrefix.length) };
  const documentPrefix = documentRooms(companyId);
  if (!room.startsWith(documentPrefix)) return null;
  const rest = room.slice(documentPrefix.length);
  const colon = rest.indexOf(":");
  const typeLength = Number(rest.slice(0, colon));
  return { kind: "document", type: rest.slice(colon + 1, colon + 1 + typeLength), id: rest.slice(colon + 2 + typeLength) };
}
