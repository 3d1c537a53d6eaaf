/**
 * The server of the outbox scenario: Truss configured as in servers/truss.mjs
 * (HS256 JWT auth, in-memory stores), with an application table and the
 * `@truss/postgres` outbox in a schema of the machine's PostgreSQL
 * (127.0.0.1:5432, database `test`), and `relay(engine, outbox.source())`
 * on this one node. The application's transactions run here, in this
 * process, as they would in a route handler:
 * `BEGIN; INSERT INTO bench_rows ...; [outbox emit]; COMMIT`.
 */
import { serveCommands } from "../lib/commands.mjs";
import { now, sleep } from "../lib/clock.mjs";
import { Histogram } from "../lib/histogram.mjs";
import { BENCH_SECRET } from "../lib/tokens.mjs";
import { listen, pace, projectUpdate, runBounded, SendTracker } from "./common.mjs";

let engine;
let pool;
let outbox;
let relayOutbox;
let schema;
/** The running relay, or null while it is stopped. */
let running = null;
let insertRow;
/** The relay's own pool, when it runs on one; else it shares the application's. */
let relayPool = null;
let Pool;
let postgresOutboxOf;

/**
 * One application transaction: an app row, and with `via: "outbox"` the
 * outbox row in the same transaction; with `via: "direct"` the engine's own
 * `emit` right after the commit (the dual write). Records the transaction's
 * time, BEGIN sent to COMMIT answered, in `transactions`.
 */
async function commit(companyId, t, seq, via, transactions) {
  const client = await pool.connect();
  try {
    const startedAt = now();
    await client.query("BEGIN");
    await client.query(insertRow, [companyId, `e-${seq}`, 1249.5]);
    if (via === "outbox") await outbox.with(client).toCompany(companyId).emit("project:updated", projectUpdate(t, seq, companyId));
    await client.query("COMMIT");
    transactions?.record(now() - startedAt);
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
  if (via === "direct") await engine.toCompany(companyId).emit("project:updated", projectUpdate(t, seq, companyId));
}

/**
 * Starts a relay with `relay`'s options (`batchSize`...); with `ownPoolSize`,
 * its source takes its connections from a pool of that size of its own
 * instead of the application's.
 */
async function startRelay({ ownPoolSize, ...options } = {}) {
  await relayPool?.end();
  relayPool = ownPoolSize ? newPool(ownPoolSize) : null;
  const source = relayPool ? postgresOutboxOf(relayPool, { schema }).source() : outbox.source();
  running = relayOutbox(engine, source, options);
  return running;
}

function newPool(max) {
  const created = new Pool({ host: "127.0.0.1", port: 5432, user: "postgres", database: "test", max });
  // An idle client dropped by the server must not end the process.
  created.on("error", () => {});
  return created;
}

serveCommands({
  /**
   * @param {object} args
   * @param {string} args.pgSchema the schema to migrate into and use (the scenario creates its name and drops it)
   * @param {number} [args.poolSize] the pool's `max`
   */
  async start({ pgSchema, poolSize = 20 }) {
    // TRUSS_CORE points at another build of @truss/core (a proposed change) to measure it against the same workload.
    const { createRealtimeEngine, relay } = await import(process.env.TRUSS_CORE ?? "@truss/core");
    const { default: pg } = await import("pg");
    const { migrate, postgresOutbox } = await import("@truss/postgres");
    schema = pgSchema;
    Pool = pg.Pool;
    postgresOutboxOf = postgresOutbox;
    pool = newPool(poolSize);
    await migrate(pool, { schema });
    await pool.query(
      `CREATE TABLE IF NOT EXISTS "${schema}".bench_rows (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, company_id text NOT NULL, expense_id text NOT NULL, amount numeric NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`,
    );
    insertRow = `INSERT INTO "${schema}".bench_rows (company_id, expense_id, amount) VALUES ($1, $2, $3)`;
    engine = createRealtimeEngine({
      auth: { secret: BENCH_SECRET, algorithms: ["HS256"] },
      logger: false,
      limits: { eventsPerSecond: 1_000_000 },
    });
    outbox = postgresOutbox(pool, { schema });
    relayOutbox = relay;
    const { server, port } = await listen();
    engine.attach(server);
    await startRelay();
    return { port, pid: process.pid };
  },

  /**
   * Application transactions at a paced `rate` for `durationMs`, round-robin
   * over `companies`, each publishing one `project:updated` stamped with its
   * scheduled time: through the outbox (`via: "outbox"`) or with the engine's
   * `emit` after the commit (`via: "direct"`).
   */
  async commits({ companies, rate, durationMs, via }) {
    const tracker = new SendTracker();
    const transactions = new Histogram();
    const relay = running;
    const before = relay?.stats;
    let maxLagMs = 0;
    const lag = setInterval(() => (maxLagMs = Math.max(maxLagMs, relay?.stats.lagMs ?? 0)), 10);
    const paced = await pace({
      rate,
      durationMs,
      send: (seq, t) => tracker.track(commit(companies[seq % companies.length], t, seq, via, transactions)),
    });
    const settled = await tracker.settle();
    clearInterval(lag);
    // What the relay did meanwhile (rows published after this returns are not counted).
    const after = relay?.stats;
    const relayDelta = after && { published: after.published - before.published, batches: after.batches - before.batches, retried: after.retried - before.retried, maxLagMs: Math.round(maxLagMs) };
    return { ...paced, ...settled, transactions: transactions.summary(), relay: relayDelta };
  },

  /**
   * `count` pairs of transactions one at a time, one with the outbox row and
   * one without, alternating which goes first, so both see the same machine;
   * to `companyId`, which no device follows. The relay keeps running, as it
   * would beside the application.
   */
  async transactions({ count, companyId }) {
    const withOutbox = new Histogram();
    const without = new Histogram();
    for (let seq = 0; seq < count; seq++) {
      const order = seq % 2 === 0 ? ["outbox", "none"] : ["none", "outbox"];
      for (const via of order) await commit(companyId, now(), seq, via, via === "outbox" ? withOutbox : without);
    }
    return { withOutbox: withOutbox.summary(), without: without.summary() };
  },

  /** Resolves once the outbox table is empty (every row published), at most `timeoutMs`; answers the rows left. */
  async waitEmpty({ timeoutMs = 30_000 } = {}) {
    const startedAt = now();
    for (;;) {
      const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".outbox`);
      if (rows[0].n === 0 || now() - startedAt > timeoutMs) return { left: rows[0].n, waitedMs: Math.round(now() - startedAt) };
      await sleep(20);
    }
  },

  /**
   * Closed-loop transactions, `concurrency` at a time for `durationMs`, with
   * the outbox row (`via: "outbox"`) or without (`via: "none"`), to
   * `companyId`: the most commits a second the application gets.
   */
  async ceiling({ durationMs, concurrency, via, companyId }) {
    const transactions = new Histogram();
    let committed = 0;
    const startedAt = now();
    const endsAt = startedAt + durationMs;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (now() < endsAt) {
          await commit(companyId, now(), committed, via, transactions);
          committed += 1;
        }
      }),
    );
    return { committed, perSecond: Math.round((committed / (now() - startedAt)) * 1000), transactions: transactions.summary() };
  },

  /** Stops the relay (it finishes its batch); rows then wait in the table. */
  async stopRelay() {
    await running?.close();
    running = null;
    return true;
  },

  /** Stops the relay and starts another with `options` (see `startRelay`). */
  async restartRelay(options) {
    await running?.close();
    await startRelay(options);
    return true;
  },

  /**
   * With the relay stopped: `rows` outbox rows, round-robin over `companies`,
   * committed `perTransaction` to a transaction, `concurrency` transactions at a time.
   */
  async fill({ companies, rows, perTransaction = 500, concurrency = 4 }) {
    if (running) throw new Error("stop the relay first");
    const startedAt = now();
    const transactions = Math.ceil(rows / perTransaction);
    const failed = await runBounded(transactions, concurrency, async (index) => {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const writer = outbox.with(client);
        for (let seq = index * perTransaction; seq < Math.min(rows, (index + 1) * perTransaction); seq++) {
          const companyId = companies[seq % companies.length];
          await writer.toCompany(companyId).emit("project:updated", projectUpdate(now(), seq, companyId));
        }
        await client.query("COMMIT");
      } catch (error) {
        await client.query("ROLLBACK").catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    });
    if (failed > 0) throw new Error(`${failed} of ${transactions} fill transactions failed`);
    const { rows: counted } = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".outbox WHERE failed_at IS NULL`);
    return { pending: counted[0].n, elapsedMs: Math.round(now() - startedAt) };
  },

  /**
   * Starts a fresh relay (with `relayOptions`, see `startRelay`) and resolves
   * once it has published `expected` rows (or `timeoutMs` passed): its start time, on the shared clock, for the
   * generator's last arrival to be measured from.
   */
  async drain({ expected, relayOptions, timeoutMs = 120_000 }) {
    if (running) throw new Error("the relay is running already");
    const startedAt = now();
    const relay = await startRelay(relayOptions);
    while (relay.stats.published < expected && now() - startedAt < timeoutMs) await sleep(2);
    const publishedAt = now();
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".outbox`);
    return { startedAt, publishedMs: Math.round(publishedAt - startedAt), stats: relay.stats, left: rows[0].n };
  },

  /**
   * The baseline of the drain: `count` company broadcasts, round-robin over
   * `companies`, straight through the engine as fast as they go.
   */
  async burst({ companies, count }) {
    const startedAt = now();
    const published = [];
    for (let seq = 0; seq < count; seq++) {
      const companyId = companies[seq % companies.length];
      published.push(engine.toCompany(companyId).emit("project:updated", projectUpdate(now(), seq, companyId)));
    }
    const positions = await Promise.all(published);
    return { startedAt, sent: count, stored: positions.filter(Boolean).length, elapsedMs: Math.round(now() - startedAt) };
  },

  /** Closes the relay, the engine and the pool before exiting. */
  async close() {
    await running?.close();
    running = null;
    await engine?.close?.();
    await relayPool?.end();
    await pool?.end();
    return true;
  },
});
