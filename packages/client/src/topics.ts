import { isTopicName, MAX_TOPIC_LENGTH, PROTOCOL_EVENTS, type TopicDropped } from "@truss/protocol";
import type { Connection } from "./connection.js";
import { fromPayload, TrussClientError } from "./errors.js";
import { KeptSubscriptions, type DroppedSubscription } from "./subscriptions.js";

/**
 * The topics of one connection (`client.subscribe`): the ones the app wants,
 * subscribed again after every reconnection, and forgotten when the server
 * drops them.
 */
export class TopicSubscriptions {
  private readonly kept: KeptSubscriptions<string, unknown>;

  constructor(connection: Connection, onDropped: (drop: DroppedSubscription) => void) {
    this.kept = new KeptSubscriptions(connection, {
      id: (topic) => topic,
      describe: (topic) => `topic "${topic}"`,
      subscribe: (topic) => connection.request(PROTOCOL_EVENTS.topicSubscribe, { topic }),
      unsubscribe: (topic) => connection.request(PROTOCOL_EVENTS.topicUnsubscribe, { topic }),
      dropped: (topic, error) => onDropped({ kind: "topic", topic, error }),
    });
    connection.socket.on(PROTOCOL_EVENTS.topicDropped, (notice: TopicDropped) => {
      if (!isTopicName(notice?.topic)) return;
      this.kept.drop(notice.topic, fromPayload(notice.error, `The server ended the subscription to "${notice.topic}".`));
    });
  }

  /** The wanted topics, as a snapshot. */
  get topics(): ReadonlySet<string> {
    return new Set(this.kept.keys());
  }

  async subscribe(topic: string): Promise<void> {
    assertTopic(topic);
    await this.kept.add(topic);
  }

  async unsubscribe(topic: string): Promise<void> {
    assertTopic(topic);
    await this.kept.remove(topic);
  }
}

/** Refuses a malformed name before it goes out, with the code the server would answer. */
function assertTopic(topic: unknown): asserts topic is string {
  if (isTopicName(topic)) return;
  throw new TrussClientError(
    "INVALID_PAYLOAD",
    `${JSON.stringify(topic)} is not a topic name: use ASCII letters, digits and _ . @ - in parts joined by : or /, each part starting with a letter or digit, at most ${MAX_TOPIC_LENGTH} characters.`,
  );
}
