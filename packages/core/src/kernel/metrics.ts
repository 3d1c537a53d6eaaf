import { Counter, Gauge, Registry, type Metric, type RegistryContentType } from "prom-client";
import type { InboxStore } from "../inbox/store.js";
import type { StreamStore } from "../streams/store.js";
import { withinStoreDeadline, type StoreDeadlines, type StoreName } from "./deadlines.js";

/**
 * Where the engine's metrics go, and which optional labels they carry: the
 * `metrics` option of `createRealtimeEngine`.
 *
 * @example One metrics route for the application and Truss
 * ```ts
 * import { collectDefaultMetrics, Registry } from "prom-client";
 * const registry = new Registry();
 * collectDefaultMetrics({ register: registry });
 * const engine = createRealtimeEngine({ auth, metrics: { registry } });
 * app.get("/metrics", async (_req, res) => res.type(registry.contentType).send(await registry.metrics()));
 * ```
 */
export interface MetricsOptions {
  /**
   * The prom-client registry Truss registers its metrics in. Default: a
   * registry of the engine's own, rendered by `engine.metrics()` and the
   * adapters' metrics route. Pass the application's registry to serve both
   * from one scrape; `engine.metrics()` then renders the whole registry.
   * One engine per registry: a second engine registering the same names in
   * it is refused at `createRealtimeEngine`.
   */
  registry?: Registry<RegistryContentType>;
  /**
   * Opt-in per-company counters (`truss_company_*`, label `company`). Off by
   * default: a label per tenant multiplies time series by the number of
   * tenants. `max` caps the distinct companies labelled by this node: the
   * first `max` companies seen keep their id, every later one is counted
   * under `company="other"`, so at most `max + 1` series exist per label set.
   */
  companyLabel?: { max?: number };
}

/** The default `metrics.companyLabel.max` when `companyLabel` is given as `{}`. */
export const DEFAULT_COMPANY_LABEL_MAX = 100;

/** The `company` label value of companies past the `companyLabel.max` cap. */
export const OTHER_COMPANY = "other";

/**
 * One metric: its kind, help text, label names in order and, for a histogram,
 * its buckets. A `perCompany` counter exists only with `metrics.companyLabel`.
 */
type MetricDefinition =
  | { readonly kind: "gauge"; readonly help: string; readonly labels: readonly [] }
  | { readonly kind: "counter"; readonly help: string; readonly labels: readonly string[]; readonly perCompany?: true }
  | { readonly kind: "histogram"; readonly help: string; readonly labels: readonly string[]; readonly buckets: readonly number[] };

/**
 * Every metric the engine reports, in the order it registers (and renders)
 * them. Call sites name one of these, and the compiler checks the name, its
 * kind and its label names against this table; docs/operations.md lists the
 * same metrics (a test keeps the two in step).
 */
export const ENGINE_METRICS = {
  truss_connections: { kind: "gauge", help: "Sockets connected to this node.", labels: [] },
  truss_connections_total: { kind: "counter", help: "Sockets accepted by this node since start.", labels: [] },
  truss_disconnects_total: {
    kind: "counter",
    help: "Sockets of this node that disconnected, by Socket.IO reason (transport_close, ping_timeout, server_disconnect, client_disconnect, ... or other).",
    labels: ["reason"],
  },
  truss_auth_failures_total: { kind: "counter", help: "Handshakes refused, by error code.", labels: ["code"] },
  truss_auth_expired_total: { kind: "counter", help: "Connections closed because their token expired.", labels: [] },
  truss_auth_refreshed_total: { kind: "counter", help: "Successful auth:refresh calls.", labels: [] },
  truss_events_received_total: { kind: "counter", help: "Client events received.", labels: [] },
  truss_errors_total: { kind: "counter", help: "Client events refused, by error code.", labels: ["code"] },
  truss_broadcasts_total: { kind: "counter", help: "Application events emitted, by scope (company, topic, user).", labels: ["scope"] },
  truss_inbox_appended_total: { kind: "counter", help: "Messages stored in user inboxes by this node.", labels: [] },
  truss_inbox_pushed_total: { kind: "counter", help: "Live inbox pushes to sockets of this node.", labels: [] },
  truss_inbox_duplicates_total: {
    kind: "counter",
    help: "toUser sends on this node that repeated an idempotency key within the inbox TTL, so stored nothing new.",
    labels: [],
  },
  truss_document_updates_total: { kind: "counter", help: "Document updates, by outcome (applied, merged, conflict, rollback).", labels: ["outcome"] },
  truss_document_mutations_total: {
    kind: "counter",
    help: "Document updates that carried a mutation id, by outcome: committed (recorded with its commit), duplicate (committed before; answered with that version) or expired (older than the stores remember; refused with MUTATION_EXPIRED).",
    labels: ["outcome"],
  },
  truss_store_errors_total: { kind: "counter", help: "Store calls that failed because the store was unreachable or did not answer, by store.", labels: ["store"] },
  truss_slow_consumers_total: { kind: "counter", help: "Sockets disconnected with SLOW_CONSUMER because too much waited to be written to them.", labels: [] },
  truss_inbox_undeliverable_total: { kind: "counter", help: "Stored inbox messages skipped because they could not be encoded for a socket.", labels: [] },
  truss_authorization_refusals_total: { kind: "counter", help: "Operations the authorize policy refused (or could not decide), by action.", labels: ["action"] },
  truss_topic_subscriptions_total: { kind: "counter", help: "Topic subscriptions granted on this node.", labels: [] },
  truss_scoped_presence_members: { kind: "gauge", help: "Memberships of scoped presence (one socket in one topic or document) held by this node.", labels: [] },
  truss_scoped_presence_updates_total: {
    kind: "counter",
    help: "Scoped presence state updates, by outcome: sent (went out to the scope) or coalesced (replaced by a later state before its turn came).",
    labels: ["outcome"],
  },
  truss_scoped_presence_refused_total: { kind: "counter", help: "presence:join and presence:set calls refused, by error code.", labels: ["code"] },
  truss_subscriptions_dropped_total: {
    kind: "counter",
    help: "Subscriptions ended by the server (refresh re-check or revocation), by kind (topic, document).",
    labels: ["kind"],
  },
  truss_stream_append_failures_total: {
    kind: "counter",
    help: "Company or topic broadcasts the stream store could not take; they went out live only, without a position.",
    labels: [],
  },
  truss_stream_duplicates_total: {
    kind: "counter",
    help: "Company or topic broadcasts on this node that repeated an idempotency key within the stream TTL, so stored nothing new.",
    labels: [],
  },
  truss_broadcast_send_failures_total: {
    kind: "counter",
    help: "Stored company or topic broadcasts this node could not send live (the adapter refused them); devices read them from the stream.",
    labels: [],
  },
  truss_stream_resyncs_total: { kind: "counter", help: "stream:read answers that told a device to refetch, by reason.", labels: ["reason"] },
  truss_stream_replayed_total: { kind: "counter", help: "Stored broadcasts sent to devices catching up with stream:read.", labels: [] },
  truss_stream_recoveries_total: {
    kind: "counter",
    help: "stream:read answers that sent a device stored broadcasts it had missed, instead of a resync (a gap read in several pages counts once per page).",
    labels: [],
  },
  truss_revocations_total: { kind: "counter", help: "disconnectUser and unsubscribeUser calls made on this node, by kind.", labels: ["kind"] },
  truss_outbox_published_total: { kind: "counter", help: "Outbox rows this node's relay published and removed.", labels: [] },
  truss_outbox_failed_total: {
    kind: "counter",
    help: "Outbox rows the engine refused for good (kept in the table as failed), by error code.",
    labels: ["code"],
  },
  truss_outbox_retries_total: {
    kind: "counter",
    help: "Outbox publishes that failed for a transient reason and were left to be retried, by error code.",
    labels: ["code"],
  },
  truss_outbox_lag_seconds: { kind: "gauge", help: "Age of the oldest row of the outbox relay's last batch when it was claimed; 0 when nothing was pending.", labels: [] },
  truss_outbox_batch_duration_seconds: {
    kind: "histogram",
    help: "Time the outbox relay took to publish and settle one batch.",
    labels: [],
    // 1 ms to 10 s.
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  },
  truss_undelivered_calls_total: {
    kind: "counter",
    help: "Calls this node made to the undelivered handler, retries included.",
    labels: [],
  },
  truss_undelivered_outcomes_total: {
    kind: "counter",
    help: "How this node's undelivered calls ended, by outcome: delivered (the handler resolved), retried (it threw or timed out, and will be called again) or given_up (after undelivered.maxAttempts).",
    labels: ["outcome"],
  },
  truss_undelivered_delay_seconds: {
    kind: "histogram",
    help: "Time from storing an inbox message to an undelivered handler call for it (every call, retries included).",
    labels: [],
    // 100 ms to a day: a call waits afterMs at least, a retry longer.
    buckets: [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400],
  },
  // Totals kept by the stores, read at scrape time (see createEngineMetrics).
  truss_inbox_dropped_total: {
    kind: "counter",
    help: "Inbox messages dropped unread, by reason (TTL or length cap), across all nodes sharing the store.",
    labels: ["reason"],
  },
  truss_stream_dropped_total: {
    kind: "counter",
    help: "Stored broadcasts dropped from stream history, by reason (TTL or size cap), across all nodes sharing the store.",
    labels: ["reason"],
  },
  truss_command_duration_seconds: {
    kind: "histogram",
    help: "Time from receiving a client event to answering it, for events that reached a handler, by event (protocol and registered application events; anything else is other) and outcome (ok, error).",
    labels: ["event", "outcome"],
    // 1 ms to 10 s.
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  },
  truss_store_call_duration_seconds: {
    kind: "histogram",
    help: "Duration of store calls made by this node, by store and operation.",
    labels: ["store", "operation"],
    // 0.5 ms to 5 s.
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  },
  truss_handshake_duration_seconds: {
    kind: "histogram",
    help: "Duration of the Truss handshake (origin, authentication, device cap), by outcome (accepted, refused).",
    labels: ["outcome"],
    // 5 ms to 10 s.
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  },
  truss_inbox_delivery_lag_seconds: {
    kind: "histogram",
    help: "Time from storing an inbox message to a device acknowledging it (per inbox:ack, for the newest id acknowledged).",
    labels: [],
    // 50 ms to a day: a device may be offline for hours.
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400],
  },
  truss_company_broadcasts_total: {
    kind: "counter",
    help: "Application events emitted, by company (capped by metrics.companyLabel.max; the rest are other) and scope.",
    labels: ["company", "scope"],
    perCompany: true,
  },
  truss_company_events_received_total: {
    kind: "counter",
    help: "Client events received, by company (capped by metrics.companyLabel.max; the rest are other).",
    labels: ["company"],
    perCompany: true,
  },
} as const satisfies Record<`truss_${string}`, MetricDefinition>;

type Definitions = typeof ENGINE_METRICS;
/** The name of a metric the engine reports. */
type MetricName = keyof Definitions;
/** The names of the metrics of one kind. */
type NamesOf<Kind extends MetricDefinition["kind"]> = { [N in MetricName]: Definitions[N]["kind"] extends Kind ? N : never }[MetricName];
/** The names of the metrics without labels. */
type Unlabelled = { [N in MetricName]: Definitions[N]["labels"] extends readonly [] ? N : never }[MetricName];
/** The label set of a metric: exactly its label names, each with a value. */
type LabelsOf<N extends MetricName> = N extends MetricName ? { readonly [L in Definitions[N]["labels"][number]]: string } : never;

type Labels = Readonly<Record<string, string>>;
interface Child {
  inc(value?: number): void;
}
interface Observer {
  observe(value: number): void;
}
interface Declared<C> {
  /** What a metric without labels records into: its one series. */
  metric: C;
  labelNames: readonly string[];
  /** Makes the child of one label set, once. */
  child(values: Labels): C;
  /**
   * The children by each label's value in order (a map per label before the
   * last), so a hot path finds its child without building a key or a child per call.
   */
  children: Map<string, unknown>;
}

/**
 * The engine's metrics on a prom-client {@link Registry}. Call sites keep a
 * small shape (`inc(name, labels)`, `observe(name, labels, seconds)`) while
 * prom-client renders the text format; label children are cached per label
 * set, so a repeated increment is a map lookup per label and an add.
 */
export class MetricsRegistry {
  /** The prom-client registry the metrics live in (the application's, when given). */
  readonly registry: Registry<RegistryContentType>;
  private readonly counters = new Map<string, Declared<Child>>();
  private readonly histograms = new Map<string, Declared<Observer>>();
  private readonly companies: Set<string> | null;
  /** The value of `truss_outbox_lag_seconds`, set by the outbox relay after each claim. */
  outboxLagSeconds = 0;
  /** The value of `truss_scoped_presence_members`, kept by scoped presence as sockets join and leave. */
  scopedPresenceMembers = 0;
  private readonly companyMax: number;

  constructor(options: MetricsOptions = {}) {
    this.registry = options.registry ?? new Registry<RegistryContentType>();
    const cap = options.companyLabel;
    this.companyMax = cap ? positiveInteger(cap.max ?? DEFAULT_COMPANY_LABEL_MAX, "metrics.companyLabel.max") : 0;
    this.companies = cap ? new Set() : null;
  }

  /** Whether per-company counters are on (`metrics.companyLabel`). */
  get companyLabels(): boolean {
    return this.companies !== null;
  }

  /**
   * The `company` label for a company: its id while fewer than the cap have
   * been seen (or it was seen before), else `other`; `null` when company
   * labels are off.
   */
  company(companyId: string): string | null {
    const seen = this.companies;
    if (!seen) return null;
    if (seen.has(companyId)) return companyId;
    if (seen.size >= this.companyMax) return OTHER_COMPANY;
    seen.add(companyId);
    return companyId;
  }

  /** The content type of {@link render}'s output. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * Declares a counter; `inc` on an undeclared name throws so typos surface in
   * tests. An unlabelled counter renders `name 0` before its first increment.
   * `collect` runs at every scrape (for totals read from a store).
   */
  counter(name: MetricName, help: string, labelNames: readonly string[], collect?: (counter: Counter<string>) => Promise<void> | void): void {
    // prom-client hashes and validates the label set on every `inc`, even through a child, and builds objects
    // even without labels: each series here adds up locally, and what it counted goes to prom-client when the
    // registry reads the counter (or resets it).
    const series: CounterSeries[] = [];
    const flush = (counter: Counter<string>) => {
      for (const counted of series) {
        if (counted.pending === 0) continue;
        if (labelNames.length === 0) counter.inc(counted.pending);
        else counter.inc(counted.labels, counted.pending);
        counted.pending = 0;
      }
    };
    const metric = this.register(
      name,
      () =>
        new Counter({
          name,
          help,
          labelNames: [...labelNames],
          registers: [this.registry],
          collect(this: Counter<string>) {
            flush(this);
            return collect?.(this);
          },
        }),
    );
    const reset = metric.reset.bind(metric);
    metric.reset = () => {
      for (const counted of series) counted.pending = 0;
      reset();
    };
    const child = (values: Labels): Child => {
      const counted = new CounterSeries({ ...values });
      series.push(counted);
      return counted;
    };
    // Without labels the counter has one series, its own.
    this.counters.set(name, { metric: labelNames.length === 0 ? child({}) : metric, labelNames, child, children: new Map() });
  }

  /** Declares a gauge read at every scrape. */
  gauge(name: MetricName, help: string, read: () => number): void {
    this.register(name, () => new Gauge({ name, help, registers: [this.registry], collect(this: Gauge<string>) { this.set(read()); } }));
  }

  /** Declares a histogram of seconds (or bytes) with the given buckets. */
  histogram(name: MetricName, help: string, labelNames: readonly string[], buckets: readonly number[]): void {
    const metric = this.register(name, () => new SeriesHistogram(name, help, labelNames, buckets));
    // prom-client renders any metric that answers `get()` as it renders its own.
    this.registry.registerMetric(metric as unknown as Metric<string>);
    this.histograms.set(name, { metric, labelNames, child: (values) => metric.labels(values), children: new Map() });
  }

  /** Adds `by` to the counter with the given labels: exactly its label names, each with a value. */
  inc(name: Extract<NamesOf<"counter">, Unlabelled>, labels?: undefined, by?: number): void;
  inc<N extends Exclude<NamesOf<"counter">, Unlabelled>>(name: N, labels: LabelsOf<N>, by?: number): void;
  inc(name: MetricName, labels?: Labels, by = 1): void {
    childOf(this.counters, name, labels).inc(by);
  }

  /** Records one observation (in the histogram's unit: seconds, bytes) with the given labels: exactly its label names, each with a value. */
  observe(name: Extract<NamesOf<"histogram">, Unlabelled>, labels: undefined, value: number): void;
  observe<N extends Exclude<NamesOf<"histogram">, Unlabelled>>(name: N, labels: LabelsOf<N>, value: number): void;
  observe(name: MetricName, labels: Labels | undefined, value: number): void {
    childOf(this.histograms, name, labels).observe(value);
  }

  /** Renders the registry (every metric in it, the application's too when it was given) in its text format. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  private register<M>(name: string, create: () => M): M {
    if (this.registry.getSingleMetric(name)) {
      throw new Error(
        `The metrics registry already has "${name}": give each engine its own registry (metrics.registry), or merge registries with Registry.merge for one scrape.`,
      );
    }
    return create();
  }
}

/**
 * A histogram the hot paths record into with a bucket search and three
 * additions, rendered by prom-client's registry in the same text as its own
 * `Histogram`. prom-client's `observe` validates and hashes the label set on
 * every call, even through a cached child: on the inbox and document paths
 * that was paid per message, for every store call and command.
 */
class SeriesHistogram {
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly bounds: Float64Array;
  private readonly series: HistogramSeries[] = [];
  /** The only series of a histogram without labels, rendered (as zeros) from the start, as prom-client does. */
  private readonly unlabelled: HistogramSeries | undefined;

  constructor(
    readonly name: string,
    readonly help: string,
    labelNames: readonly string[],
    buckets: readonly number[],
  ) {
    this.bounds = Float64Array.from(buckets);
    if (labelNames.length === 0) this.unlabelled = this.labels({}) as HistogramSeries;
  }

  /** Records into the histogram without labels. */
  observe(value: number): void {
    this.unlabelled?.observe(value);
  }

  /** The series of one label set (`{}` for the histogram without labels); the caller caches it. */
  labels(values: Labels): Observer {
    const series = new HistogramSeries({ ...values }, this.bounds);
    this.series.push(series);
    return series;
  }

  /** What a registry renders, in prom-client's shape: cumulative buckets, `+Inf`, sum and count per label set. */
  async getForPromString(): Promise<RenderedMetric> {
    const bucket = `${this.name}_bucket`;
    const values: RenderedValue[] = [];
    for (const { labels, counts, sum, count } of this.series) {
      let cumulative = 0;
      for (let index = 0; index < this.bounds.length; index++) {
        cumulative += counts[index]!;
        values.push({ labels: { le: this.bounds[index]! }, sharedLabels: labels, value: cumulative, metricName: bucket });
      }
      values.push({ labels: { le: "+Inf" }, sharedLabels: labels, value: count, metricName: bucket });
      values.push({ labels: {}, sharedLabels: labels, value: sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels: labels, value: count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** The same, with each value's labels whole (`registry.getMetricsAsJSON()`, `Registry.aggregate`). */
  async get(): Promise<RenderedMetric> {
    const data = await this.getForPromString();
    return { ...data, values: data.values.map(({ sharedLabels, labels, ...value }) => ({ ...value, labels: { ...labels, ...sharedLabels } })) };
  }

  /** Zeroes every series (`registry.resetMetrics()`); the cached series stay valid. */
  reset(): void {
    for (const series of this.series) series.reset();
  }
}

/** A metric as prom-client's registry reads it from `get()` / `getForPromString()`. */
interface RenderedMetric {
  name: string;
  help: string;
  type: "histogram";
  aggregator: "sum";
  values: RenderedValue[];
}
interface RenderedValue {
  labels: Readonly<Record<string, string | number>>;
  sharedLabels?: Labels;
  value: number;
  metricName: string;
}

/** One label set of a {@link SeriesHistogram}: a count per bucket (not cumulative), the sum and the count. */
class HistogramSeries implements Observer {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Labels,
    private readonly bounds: Float64Array,
  ) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const { bounds } = this;
    let index = 0;
    while (index < bounds.length && value > bounds[index]!) index++;
    // Past the last bound, a value counts only in `+Inf` (the count).
    if (index < bounds.length) this.counts[index]! += 1;
    this.sum += value;
    this.count += 1;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/**
 * The series of a declared metric for a label set: its one series when it
 * has no labels, else the one cached under the declared labels' values in
 * order. Throws for an undeclared name, so typos surface in tests.
 */
function childOf<C>(declared: ReadonlyMap<string, Declared<C>>, name: string, labels: Labels | undefined): C {
  const found = declared.get(name);
  if (!found) throw new Error(`metric ${name} was not declared`);
  const { metric, labelNames, children } = found;
  if (labelNames.length === 0) return metric;
  let level = children;
  const last = labelNames.length - 1;
  for (let i = 0; i < last; i++) {
    const value = labels?.[labelNames[i]!] ?? "";
    let next = level.get(value) as Map<string, unknown> | undefined;
    if (!next) level.set(value, (next = new Map()));
    level = next;
  }
  const value = labels?.[labelNames[last]!] ?? "";
  let child = level.get(value) as C | undefined;
  if (!child) {
    child = found.child({ ...labels });
    level.set(value, child);
  }
  return child;
}

/** One label set of a labelled counter: what it counted since the registry last read it. */
class CounterSeries implements Child {
  pending = 0;

  constructor(readonly labels: Labels) {}

  inc(by = 1): void {
    this.pending += by;
  }
}

function positiveInteger(value: number, name: string): number {
  if (!(Number.isSafeInteger(value) && value > 0)) throw new TypeError(`${name} must be a positive integer; got ${String(value)}.`);
  return value;
}

/** Seconds since `start` (a `performance.now()` reading). */
export function secondsSince(start: number): number {
  return (performance.now() - start) / 1000;
}

/** A total a store may report: a whole number, not negative. */
const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

/** Socket.IO disconnect reasons, as the `reason` label of `truss_disconnects_total`; anything else is `other`. */
const DISCONNECT_REASONS = new Map<string, string>([
  ["transport close", "transport_close"],
  ["transport error", "transport_error"],
  ["ping timeout", "ping_timeout"],
  ["parse error", "parse_error"],
  ["server namespace disconnect", "server_disconnect"],
  ["client namespace disconnect", "client_disconnect"],
  ["forced close", "forced_close"],
  ["forced server close", "forced_server_close"],
  ["server shutting down", "server_shutting_down"],
]);

/** The bounded `reason` label of a Socket.IO disconnect reason. */
export function disconnectReasonLabel(reason: string): string {
  return DISCONNECT_REASONS.get(reason) ?? "other";
}

/** Store totals (shared by every node on the store) rendered at scrape time. */
type StoreTotals = { inbox: Pick<InboxStore, "dropped">; streams: Pick<StreamStore, "trimmed"> };

/**
 * The registry of one engine, with every metric it reports declared up front.
 * The store totals are read within the stores' `deadlines`, so a store that
 * does not answer leaves its samples out instead of holding the scrape.
 */
export function createEngineMetrics(connections: () => number, stores: StoreTotals, deadlines: StoreDeadlines, options: MetricsOptions = {}): MetricsRegistry {
  const metrics = new MetricsRegistry(options);
  const gauges: Record<NamesOf<"gauge">, () => number> = {
    truss_connections: connections,
    truss_outbox_lag_seconds: () => metrics.outboxLagSeconds,
    truss_scoped_presence_members: () => metrics.scopedPresenceMembers,
  };

  // Totals kept by the stores, across all nodes sharing them, read at scrape time. A store
  // that is down is already counted by truss_store_errors_total; its samples are left out,
  // as are those of a store that answered something other than counts: the scrape goes on.
  const storeTotals = (store: StoreName, read: () => Promise<{ expired: number; overCap: number }>) => async (counter: Counter<string>) => {
    counter.reset();
    let expired: unknown;
    let overCap: unknown;
    try {
      ({ expired, overCap } = await withinStoreDeadline(deadlines, store, read));
    } catch {
      return;
    }
    if (isCount(expired)) counter.labels({ reason: "expired" }).inc(expired);
    if (isCount(overCap)) counter.labels({ reason: "over_cap" }).inc(overCap);
  };
  const collects: Partial<Record<NamesOf<"counter">, (counter: Counter<string>) => Promise<void>>> = {
    truss_inbox_dropped_total: storeTotals("inbox", () => stores.inbox.dropped()),
    truss_stream_dropped_total: storeTotals("streams", async () => {
      const trimmed = await stores.streams.trimmed();
      return { expired: trimmed.expired, overCap: trimmed.trimmed };
    }),
  };

  for (const [name, definition] of Object.entries(ENGINE_METRICS) as Array<[MetricName, MetricDefinition]>) {
    if (definition.kind === "gauge") metrics.gauge(name, definition.help, gauges[name as NamesOf<"gauge">]);
    else if (definition.kind === "histogram") metrics.histogram(name, definition.help, definition.labels, definition.buckets);
    else if (!definition.perCompany || metrics.companyLabels) metrics.counter(name, definition.help, definition.labels, collects[name as NamesOf<"counter">]);
  }
  return metrics;
}
