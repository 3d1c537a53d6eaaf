import { Backoff, isRetryableCode, type TrussClientError } from "@truss/client";

/**
 * Where a subscription shared by the components that hold it stands: the
 * same object until it changes, so a component can read it with
 * `useSyncExternalStore`.
 * - `pending`: asked for, the server has not answered (or the client is offline, or
 *   the server's answer was one that may pass, such as `TIMEOUT` or `STORE_UNAVAILABLE`,
 *   and it is asked again, with backoff);
 * - `active`: the server accepted it;
 * - `refused`: the server (or the client, for a malformed name) said no: `FORBIDDEN`, `TOO_MANY_SUBSCRIPTIONS`, `INVALID_PAYLOAD`…;
 * - `dropped`: the server ended it after accepting it (`ACCESS_REVOKED`, or `FORBIDDEN` after a token refresh), or the client stopped because its session passed to another user (`AUTH_PRINCIPAL_MISMATCH`).
 */
export type SubscriptionState =
  | {
      /** See above. */
      readonly status: "pending" | "active";
      /** Nothing went wrong. */
      readonly error: null;
    }
  | {
      /** See above. */
      readonly status: "refused" | "dropped";
      /** Why. */
      readonly error: TrussClientError;
    };

/** A component's hold on a shared subscription. */
export interface Hold {
  /** Settles once the server answered for good: resolves when accepted, rejects when refused (or nobody holds it any more). */
  readonly answer: Promise<void>;
  /** Lets go; the last holder's release ends the subscription. Idempotent. */
  release(): void;
}

export const PENDING: SubscriptionState = Object.freeze({ status: "pending", error: null });
const ACTIVE: SubscriptionState = Object.freeze({ status: "active", error: null });

interface Entry {
  holders: number;
  state: SubscriptionState;
  answer: Promise<void>;
  readonly listeners: Set<() => void>;
  releaseTimer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * One kind of subscription (topics, watched documents, presence in a scope)
 * held by components: the first holder subscribes, the last one's release
 * unsubscribes, so ten components on one topic make one subscription on the
 * wire. The release waits a macrotask, so StrictMode's unmount and
 * remount, or a list re-keyed in one render, keep the subscription instead
 * of ending and asking for it again.
 */
export class SharedSubscriptions<R> {
  private readonly entries = new Map<string, Entry>();

  /**
   * @param keyOf - tells subscriptions apart.
   * @param subscribe - asks for the subscription; resolves when accepted.
   * @param unsubscribe - ends it.
   */
  constructor(
    private readonly keyOf: (ref: R) => string,
    private readonly subscribe: (ref: R) => Promise<unknown>,
    private readonly unsubscribe: (ref: R) => Promise<unknown>,
  ) {}

  /** Holds `ref` until the returned hold is released; `onChange` hears each change of its {@link state}. */
  hold(ref: R, onChange: () => void = () => undefined): Hold {
    const key = this.keyOf(ref);
    let entry = this.entries.get(key);
    if (!entry) entry = this.open(key, ref);
    clearTimeout(entry.releaseTimer);
    entry.releaseTimer = undefined;
    entry.holders += 1;
    const listener = () => onChange();
    entry.listeners.add(listener);
    const held = entry;
    let released = false;
    return {
      answer: held.answer,
      release: () => {
        if (released) return;
        released = true;
        held.listeners.delete(listener);
        held.holders -= 1;
        if (held.holders === 0) held.releaseTimer = setTimeout(() => this.close(key, ref, held), 0);
      },
    };
  }

  /** Where `ref` stands; {@link PENDING} when nobody holds it. */
  state(ref: R): SubscriptionState {
    return this.entries.get(this.keyOf(ref))?.state ?? PENDING;
  }

  /** The server ended `ref`'s subscription: its holders see `dropped` until they let go. */
  drop(ref: R, error: TrussClientError): void {
    const entry = this.entries.get(this.keyOf(ref));
    if (entry) this.dropEntry(entry, error);
  }

  /** The client ended for `error`: every subscription held is `dropped` for its holders, unless it was refused. */
  dropAll(error: TrussClientError): void {
    for (const entry of this.entries.values()) this.dropEntry(entry, error);
  }

  private dropEntry(entry: Entry, error: TrussClientError): void {
    if (entry.state.status !== "refused") this.set(entry, { status: "dropped", error });
  }

  private open(key: string, ref: R): Entry {
    const entry: Entry = { holders: 0, state: PENDING, answer: Promise.resolve(), listeners: new Set(), releaseTimer: undefined };
    this.entries.set(key, entry);
    entry.answer = this.ask(key, ref, entry);
    // A hold that never reads its answer must not surface an unhandled rejection; the state carries it.
    entry.answer.catch(() => undefined);
    return entry;
  }

  /**
   * Asks for `ref` until the server answers for good: a refusal that may
   * pass (its `errorAction` is `retry` or `renew-token`) is no refusal, and
   * is asked again after a backoff while the subscription is held.
   */
  private async ask(key: string, ref: R, entry: Entry): Promise<void> {
    const backoff = new Backoff();
    for (;;) {
      try {
        await this.subscribe(ref);
        if (entry.state === PENDING) this.set(entry, ACTIVE);
        return;
      } catch (error) {
        const failure = error as TrussClientError;
        const passing = isRetryableCode(failure.code);
        if (!passing && entry.state === PENDING) this.set(entry, { status: "refused", error: failure });
        if (!passing || this.entries.get(key) !== entry) throw failure;
        await new Promise((resolve) => setTimeout(resolve, backoff.next()));
        // Let go of meanwhile: nobody waits for it any more.
        if (this.entries.get(key) !== entry) throw failure;
      }
    }
  }

  private close(key: string, ref: R, entry: Entry): void {
    if (entry.holders > 0 || this.entries.get(key) !== entry) return;
    this.entries.delete(key);
    // Offline, closed or already ended by the server: there is nothing left on the wire to end.
    void this.unsubscribe(ref).catch(() => undefined);
  }

  private set(entry: Entry, state: SubscriptionState): void {
    entry.state = state;
    for (const listener of [...entry.listeners]) listener();
  }
}
