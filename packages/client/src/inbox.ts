import { isInboxId, PROTOCOL_EVENTS, type InboxMessage } from "@truss/protocol";
import type { Connection } from "./connection.js";
import type { DedupStore } from "./dedup.js";
import { isServerErrorCode, storageFailed, TrussClientError } from "./errors.js";

/** How many handled messages may wait before an ack goes out even though more are queued. */
const ACK_BATCH = 100;

/**
 * Turns the server's at-least-once `inbox:message` stream into exactly-once
 * delivery to the app. Messages are handled one at a time in arrival order
 * (the server's order), each is looked up in the dedup store, handed to the
 * app if new, recorded, and only then acknowledged.
 *
 * Order matters for the ack: the server keeps one cursor per device, so
 * acknowledging a message also acknowledges everything before it. Handling
 * strictly in order means the cursor never passes a message the app has not
 * finished with. Acks are coalesced (the newest id once the queue drains, or
 * every {@link ACK_BATCH}) so a replay of hundreds of messages costs a few
 * events against the server's rate limit, not hundreds.
 */
export class InboxReceiver {
  private readonly queue: InboxMessage[] = [];
  private draining = false;
  private unackedId: string | null = null;
  private unackedCount = 0;

  /**
   * @param connection - the connection to read from and ack through.
   * @param store - ids already handled.
   * @param deliver - hands a new message to the app; resolves when every handler has settled.
   */
  constructor(
    private readonly connection: Connection,
    private readonly store: DedupStore,
    private readonly deliver: (message: InboxMessage) => Promise<void>,
  ) {
    connection.socket.on(PROTOCOL_EVENTS.inboxMessage, (message: InboxMessage) => this.receive(message));
  }

  private receive(message: InboxMessage): void {
    if (!isInboxId(message?.id) || typeof message.event !== "string") {
      this.connection.report(new TrussClientError("INTERNAL_ERROR", "Ignored a malformed inbox:message from the server."));
      return;
    }
    this.queue.push(message);
    void this.drain();
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length > 0 && !this.connection.closed) {
        await this.handle(this.queue.shift()!);
        if (this.queue.length === 0 || this.unackedCount >= ACK_BATCH) this.flushAck();
      }
    } finally {
      this.draining = false;
    }
  }

  private async handle(message: InboxMessage): Promise<void> {
    let seen = false;
    try {
      // Only `true` proves it was handled: any other answer (a store's bug) delivers it, as a failure to read does.
      seen = (await this.connection.settled(this.store.has(message.id))) === true;
    } catch (error) {
      // Without the store we cannot prove it was handled; delivering twice beats losing it.
      this.connection.report(storeError("read", error));
    }
    if (!seen) {
      await this.deliver(message);
      try {
        await this.connection.settled(this.store.add(message.id));
      } catch (error) {
        this.connection.report(storeError("write", error));
      }
    }
    this.unackedId = message.id;
    this.unackedCount += 1;
  }

  private flushAck(): void {
    const id = this.unackedId;
    if (id === null || this.connection.closed) return;
    this.unackedId = null;
    this.unackedCount = 0;
    this.connection.request(PROTOCOL_EVENTS.inboxAck, { ids: [id] }).catch((error: TrussClientError) => {
      // An ack with no answer (dropped, timed out, closed) needs no report: the next ack or the replay on reconnect covers it.
      if (isServerErrorCode(error.code)) this.connection.report(error);
    });
  }
}

function storeError(operation: "read" | "write", error: unknown): TrussClientError {
  return storageFailed("dedup", operation, error, "a message may be handed to the app twice.");
}
