import { COMPANY_STREAM, PROTOCOL_EVENTS, type StreamPosition, type StreamReadResult } from "@truss/protocol";
import type { Connection } from "./connection.js";
import { storageFailed } from "./errors.js";
import { isPromiseLike, Listeners } from "./listeners.js";
import { isStreamStart, OrderedStream, type StreamHost, type StreamResync } from "./ordered-stream.js";
import type { PositionStore, StoredPosition } from "./positions.js";

/**
 * The recoverable streams of one client: the company's, always, and the
 * stream of each topic it subscribes to. Routes positioned broadcasts to
 * their {@link OrderedStream}, catches each stream up after every
 * (re)connection (the company's at once, a topic's once its subscription
 * was accepted again), and keeps positions in the {@link PositionStore}.
 */
export class StreamRecovery {
  private readonly streams = new Map<string, OrderedStream>();
  private readonly resyncListeners: Listeners<[StreamResync]>;
  private readonly recoveringListeners: Listeners<[boolean]>;
  private readonly host: StreamHost;
  private recoveringNow = false;
  /** Whether the last position store call failed: reported once until one succeeds. */
  private storeFailing = false;

  /**
   * @param connection - the connection to read through.
   * @param store - where positions are kept.
   * @param deliver - hands a message of a stream to the app's `on(event)` and `onTopic` handlers.
   * @param report - where a listener's failure goes, by listener kind.
   */
  constructor(
    private readonly connection: Connection,
    private readonly store: PositionStore,
    private readonly deliver: (event: string, data: unknown, stream: string) => void,
    report: (where: string) => (error: unknown) => void,
  ) {
    this.resyncListeners = new Listeners(report("onResync"));
    this.recoveringListeners = new Listeners(report("onRecovering"));
    this.host = {
      get connected() {
        return connection.socket.connected && !connection.closed;
      },
      read: (stream, epoch, after, until) =>
        connection.request(PROTOCOL_EVENTS.streamRead, until === undefined ? { stream, epoch, after } : { stream, epoch, after, until }) as Promise<StreamReadResult>,
      deliver,
      resync: (resync) => this.resyncListeners.emit(resync),
      save: (stream, position) => this.save(stream, position),
      report: (error) => connection.report(error),
      recoveryChanged: () => this.recoveryChanged(),
    };
    this.track(COMPANY_STREAM);
    connection.socket.on(PROTOCOL_EVENTS.streamStart, (start: unknown) => {
      if (isStreamStart(start, COMPANY_STREAM)) this.streams.get(COMPANY_STREAM)?.begin(start);
    });
    // A status listener registered before any of the app's: streams hold live delivery before the app hears `connected`.
    connection.onStatus((status) => {
      if (status !== "connected") {
        for (const stream of this.streams.values()) stream.pause();
        return;
      }
      for (const stream of this.streams.values()) {
        if (stream.stream === COMPANY_STREAM) void stream.catchUp(true);
        else stream.hold();
      }
    });
  }

  /** Whether a stream is catching up after a (re)connection or resubscription. */
  get recovering(): boolean {
    return this.recoveringNow;
  }

  /** Calls `callback` with each change of {@link recovering}; returns an unsubscribe function. */
  onRecovering(callback: (recovering: boolean) => void): () => void {
    return this.recoveringListeners.add(callback);
  }

  /** Calls `callback` with each gap the server cannot replay; returns an unsubscribe function. */
  onResync(callback: (resync: StreamResync) => void): () => void {
    return this.resyncListeners.add(callback);
  }

  /** A positioned broadcast: to its stream, or straight to the app when this client does not track the stream. */
  receive(event: string, data: unknown, position: StreamPosition): void {
    const stream = this.streams.get(position.stream);
    if (stream) stream.receive(event, data, position);
    else this.deliver(event, data, position.stream);
  }

  /** Starts tracking `stream` (a topic the app subscribes to), from its stored position if there is one. */
  track(stream: string): void {
    if (this.streams.has(stream)) return;
    this.streams.set(stream, new OrderedStream(stream, this.host, this.load(stream)));
  }

  /**
   * Its subscription was just accepted, the ack saying where the stream
   * stood then: a stream with no position starts there, one with a position
   * catches up from it.
   */
  recover(stream: string, start: unknown): void {
    const tracked = this.streams.get(stream);
    if (!tracked) return;
    // A server that sends no start (an older one): the first message starts the stream.
    tracked.begin(isStreamStart(start, stream) ? start : null);
    void tracked.catchUp(true);
  }

  /** Stops tracking `stream` and forgets its position (unsubscribed, or dropped by the server). */
  forget(stream: string): void {
    const tracked = this.streams.get(stream);
    this.streams.delete(stream);
    if (tracked) tracked.forget();
    else this.save(stream, null);
    this.recoveryChanged();
  }

  private load(stream: string): StoredPosition | undefined | Promise<StoredPosition | undefined> {
    const failed = (error: unknown) => {
      this.storeFailed("read", error);
      return undefined;
    };
    try {
      const stored = this.store.get(stream);
      return isPromiseLike(stored) ? Promise.resolve(stored).catch(failed) : stored;
    } catch (error) {
      return failed(error);
    }
  }

  private save(stream: string, position: StoredPosition | null): void {
    const failed = (error: unknown) => this.storeFailed("write", error);
    try {
      const done = position ? this.store.set(stream, position) : this.store.delete(stream);
      if (isPromiseLike(done)) done.then(() => void (this.storeFailing = false), failed);
      else this.storeFailing = false;
    } catch (error) {
      failed(error);
    }
  }

  private storeFailed(operation: "read" | "write", error: unknown): void {
    if (this.storeFailing) return;
    this.storeFailing = true;
    this.connection.report(storageFailed("position", operation, error, "after a reconnection or reload, messages may be handed to the app twice or missed."));
  }

  private recoveryChanged(): void {
    const recovering = [...this.streams.values()].some((stream) => stream.recovering);
    if (recovering === this.recoveringNow) return;
    this.recoveringNow = recovering;
    this.recoveringListeners.emit(recovering);
  }
}
