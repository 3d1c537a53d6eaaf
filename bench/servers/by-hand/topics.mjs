/**
 * Tenant-scoped topics written by hand on plain Socket.IO, as the baseline of
 * the topic scenario: an acked `topic:subscribe` that checks the name, the
 * token's roles (the same rule as Truss's policy in the bench) and a cap,
 * then joins a room named after the company and the topic. Same event, acks
 * and error codes as Truss; none of its extras (no per-socket record of what
 * was granted, so nothing to re-check on a token refresh or to revoke).
 */
import { canSeeProject } from "../common.mjs";

/** Truss's default `limits.maxSubscriptionsPerConnection`. */
const MAX_TOPICS = 100;
const PROJECT_TOPIC = /^project:([A-Za-z0-9][A-Za-z0-9_.@-]*)$/;

const refusal = (code, message) => ({ ok: false, error: { code, message } });

/** The room of one topic of one company. */
export const topicRoom = (companyId, topic) => `topic:${companyId}:${topic}`;

/** Registers the handler on each new socket; the socket's `data.user` holds the verified claims. */
export function handTopics() {
  return {
    onConnection(socket) {
      socket.on("topic:subscribe", (payload, ack) => {
        if (typeof ack !== "function") return;
        const topic = payload?.topic;
        const found = typeof topic === "string" && topic.length <= 200 ? PROJECT_TOPIC.exec(topic) : null;
        if (!found) return ack(refusal("INVALID_PAYLOAD", `"topic" must be project:<id>.`));
        const { companyId, roles } = socket.data.user;
        if (!canSeeProject(roles, found[1])) return ack(refusal("FORBIDDEN", `Subscribing to "${topic}" is not allowed for this user.`));
        const room = topicRoom(companyId, topic);
        // The socket's own room and its company's are not topics.
        if (!socket.rooms.has(room) && socket.rooms.size - 2 >= MAX_TOPICS) {
          return ack(refusal("TOO_MANY_SUBSCRIPTIONS", `This connection already holds ${MAX_TOPICS} topics.`));
        }
        socket.join(room);
        ack({ ok: true, topic });
      });
    },
  };
}
