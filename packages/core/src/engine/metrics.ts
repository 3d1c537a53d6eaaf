/**
 * Counters and gauges the engine keeps, rendered in the Prometheus text
 * format. Deliberately tiny: a label set is a string key, and nothing here
 * allocates per message beyond a map lookup.
 */
export class MetricsRegistry {
  private readonly counters = new Map<string, { help: string; values: Map<string, number> }>();
  private readonly gauges = new Map<string, { help: string; read: () => number }>();

  /** Declares a counter; `inc` on an undeclared name throws so typos surface in tests. */
  counter(name: string, help: string): void {
    this.counters.set(name, { help, values: new Map() });
  }

  /** Declares a gauge read at render time. */
  gauge(name: string, help: string, read: () => number): void {
    this.gauges.set(name, { help, read });
  }

  /** Adds `by` to the counter with the given labels. */
  inc(name: string, labels?: Record<string, string>, by = 1): void {
    const counter = this.counters.get(name);
    if (!counter) throw new Error(`metric ${name} was not declared`);
    const key = labels ? renderLabels(labels) : "";
    counter.values.set(key, (counter.values.get(key) ?? 0) + by);
  }

  /** The current value of a counter with the given labels (0 if never incremented). */
  value(name: string, labels?: Record<string, string>): number {
    return this.counters.get(name)?.values.get(labels ? renderLabels(labels) : "") ?? 0;
  }

  /** Renders every metric, plus `extra` lines computed by the caller, in the Prometheus text format. */
  render(extra: Array<{ name: string; help: string; type: "counter" | "gauge"; values: Array<[Record<string, string> | undefined, number]> }> = []): string {
    const lines: string[] = [];
    for (const [name, { help, read }] of this.gauges) {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${read()}`);
    }
    for (const [name, { help, values }] of this.counters) {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
      if (values.size === 0) lines.push(`${name} 0`);
      for (const [labels, value] of values) lines.push(`${name}${labels} ${value}`);
    }
    for (const metric of extra) {
      lines.push(`# HELP ${metric.name} ${metric.help}`, `# TYPE ${metric.name} ${metric.type}`);
      for (const [labels, value] of metric.values) lines.push(`${metric.name}${labels ? renderLabels(labels) : ""} ${value}`);
    }
    return `${lines.join("\n")}\n`;
  }
}

const NEEDS_ESCAPE = /[\\"\n]/;

/** `{a="1",b="2"}`, escaping values as the text format requires. On the hot path: no arrays, no regex work for plain values. */
function renderLabels(labels: Record<string, string>): string {
  let out = "{";
  for (const key in labels) {
    const value = labels[key]!;
    const text = NEEDS_ESCAPE.test(value) ? value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") : value;
    out += `${out.length > 1 ? "," : ""}${key}="${text}"`;
  }
  return `${out}}`;
}

/** The registry of one engine, with every metric it reports declared up front. */
export function createEngineMetrics(connections: () => number): MetricsRegistry {
  const metrics = new MetricsRegistry();
  metrics.gauge("truss_connections", "Sockets connected to this node.", connections);
  metrics.counter("truss_connections_total", "Sockets accepted by this node since start.");
  metrics.counter("truss_auth_failures_total", "Handshakes refused, by error code.");
  metrics.counter("truss_auth_expired_total", "Connections closed because their token expired.");
  metrics.counter("truss_auth_refreshed_total", "Successful auth:refresh calls.");
  metrics.counter("truss_events_received_total", "Client events received.");
  metrics.counter("truss_errors_total", "Client events refused, by error code.");
  metrics.counter("truss_broadcasts_total", "Application events emitted, by scope (company, topic, user).");
  metrics.counter("truss_inbox_appended_total", "Messages stored in user inboxes by this node.");
  metrics.counter("truss_inbox_pushed_total", "Live inbox pushes to sockets of this node.");
  metrics.counter("truss_inbox_duplicates_total", "toUser sends on this node that repeated an idempotency key within the inbox TTL, so stored nothing new.");
  metrics.counter("truss_document_updates_total", "Document updates, by outcome (applied, merged, conflict, rollback).");
  metrics.counter(
    "truss_document_mutations_total",
    "Document updates that carried a mutation id, by outcome: committed (recorded with its commit), duplicate (committed before; answered with that version) or expired (older than the stores remember; refused with MUTATION_EXPIRED).",
  );
  metrics.counter("truss_store_errors_total", "Store calls that failed because the store was unreachable or did not answer, by store.");
  metrics.counter("truss_slow_consumers_total", "Sockets disconnected with SLOW_CONSUMER because too much waited to be written to them.");
  metrics.counter("truss_inbox_undeliverable_total", "Stored inbox messages skipped because they could not be encoded for a socket.");
  metrics.counter("truss_authorization_refusals_total", "Operations the authorize policy refused (or could not decide), by action.");
  metrics.counter("truss_topic_subscriptions_total", "Topic subscriptions granted on this node.");
  metrics.counter("truss_subscriptions_dropped_total", "Subscriptions ended by the server (refresh re-check or revocation), by kind (topic, document).");
  metrics.counter("truss_stream_append_failures_total", "Company or topic broadcasts the stream store could not take; they went out live only, without a position.");
  metrics.counter("truss_stream_resyncs_total", "stream:read answers that told a device to refetch, by reason.");
  metrics.counter("truss_stream_replayed_total", "Stored broadcasts sent to devices catching up with stream:read.");
  metrics.counter("truss_revocations_total", "disconnectUser and unsubscribeUser calls made on this node, by kind.");
  return metrics;
}
