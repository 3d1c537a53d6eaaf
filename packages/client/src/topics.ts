import { isTopicName, MAX_TOPIC_LENGTH, PROTOCOL_EVENTS, topicStream, type TopicDropped } from "@truss/protocol";
import type { Connection } from "./connection.js";
import { fromPayload, TrussClientError } from "./errors.js";
import { KeptSubscriptions, type DroppedSubscription } from "./subscriptions.js";

/** What a topic's subscription tells the topic's stream (`topic:<name>`). */
export interface TopicStreams {
  /** The app wants the topic: track its stream, from a stored position if there is one. */
  track(stream: string): void;
  /** The server accepted the subscription (again), its ack saying where the stream stood: start or catch the stream up. */
  recover(stream: string, start: unknown): void;
  /** The topic is no longer wanted or allowed: forget the stream's position. */
  forget(stream: string): void;
}

/**
 * The topics of one connection (`client.subscribe`): the ones the app wants,
 * subscribed again after every reconnection, and forgotten when the server
 * drops them. Each topic's stream is caught up once its subscription is
 * accepted, since the server lets a socket read only the topics it holds.
 */
export class TopicSubscriptions {
  /** `start` stays unchecked here: an older server sends none, and {@link TopicStreams.recover} checks what comes. */
  private readonly kept: KeptSubscriptions<string, { topic: string; start?: unknown }>;

  constructor(
    connection: Connection,
    onDropped: (drop: DroppedSubscription) => void,
    private readonly streams: TopicStreams,
  ) {
    this.kept = new KeptSubscriptions(connection, {
      id: (topic) => topic,
      describe: (topic) => `topic "${topic}"`,
      subscribe: (topic) => connection.request(PROTOCOL_EVENTS.topicSubscribe, { topic }),
      unsubscribe: (topic) => connection.request(PROTOCOL_EVENTS.topicUnsubscribe, { topic }),
      accepted: (topic, ack) => streams.recover(topicStream(topic), ack.start),
      dropped: (topic, error) => {
        streams.forget(topicStream(topic));
        onDropped({ kind: "topic", topic, error });
      },
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
    this.streams.track(topicStream(topic));
    try {
      await this.kept.add(topic);
    } catch (error) {
      // Refused: a position kept from an earlier page is of no use any more. A closed client keeps it for the next page.
      if (!this.kept.has(topic) && (error as TrussClientError).code !== "CLIENT_CLOSED") this.streams.forget(topicStream(topic));
      throw error;
    }
  }

  async unsubscribe(topic: string): Promise<void> {
    assertTopic(topic);
    this.streams.forget(topicStream(topic));
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
