-- Offset-numbered broadcast histories for the stream store (postgresStores().streams).
--
-- Each stream (a company's broadcasts, or one topic of a company) has a row
-- in `streams` with its epoch and its top offset, locked by every append
-- (and by a read that must expire entries, create the stream or refresh its
-- last-touched time); its kept entries are in `stream_entries`, with no gaps from `first`
-- to `top`. An append takes the next offset and stores the entry under that
-- lock, so offsets are contiguous and ordered whichever node appends; it then
-- drops what the TTL and the size cap push out, counted in `stream_totals`.
-- Idempotency keys of the current epoch are in `stream_keys`.

CREATE TABLE IF NOT EXISTS __SCHEMA__.streams (
  company_id text    NOT NULL,
  stream     text    NOT NULL,
  epoch      text    NOT NULL,
  -- The last offset appended in this epoch, the highest each cause dropped, and the first still kept.
  top        bigint  NOT NULL,
  trimmed    bigint  NOT NULL,
  expired    bigint  NOT NULL,
  first      bigint  NOT NULL,
  -- The newest entry's ts, so ts never goes back along the stream.
  last_ts    bigint  NOT NULL,
  -- The last append or read: a stream untouched for ttlMs + idleMs is forgotten and starts a new epoch.
  touched_at bigint  NOT NULL,
  key_count  integer NOT NULL,
  PRIMARY KEY (company_id, stream)
);

CREATE TABLE IF NOT EXISTS __SCHEMA__.stream_entries (
  company_id   text   NOT NULL,
  stream       text   NOT NULL,
  entry_offset bigint NOT NULL,
  ts           bigint NOT NULL,
  event        text   NOT NULL,
  -- The data as JSON text, NULL when it was undefined.
  data         text,
  PRIMARY KEY (company_id, stream, entry_offset)
);

CREATE TABLE IF NOT EXISTS __SCHEMA__.stream_keys (
  company_id   text   NOT NULL,
  stream       text   NOT NULL,
  key          text   NOT NULL,
  -- The first entry appended with the key.
  entry_offset bigint NOT NULL,
  ts           bigint NOT NULL,
  PRIMARY KEY (company_id, stream, key)
);
CREATE INDEX IF NOT EXISTS stream_keys_by_age ON __SCHEMA__.stream_keys (company_id, stream, ts, entry_offset);

-- What the size cap and the TTL dropped, spread over a few rows (slots).
CREATE TABLE IF NOT EXISTS __SCHEMA__.stream_totals (
  slot    integer PRIMARY KEY,
  trimmed bigint  NOT NULL DEFAULT 0,
  expired bigint  NOT NULL DEFAULT 0
);

-- Locks the stream's row (creating it with the candidate epoch), starts a
-- new epoch when the stream was idle past ttl + idle, and drops the entries
-- past the TTL from the front (ts never decreases along the stream, so they
-- are a prefix). Returns the state; the caller writes it back.
CREATE OR REPLACE FUNCTION __SCHEMA__.stream_open(
  p_company text, p_stream text, p_epoch text, p_now bigint, p_ttl_ms bigint, p_idle_ms bigint,
  OUT s_epoch text, OUT s_top bigint, OUT s_trimmed bigint, OUT s_expired bigint, OUT s_first bigint,
  OUT s_last_ts bigint, OUT s_key_count integer, OUT n_expired integer)
LANGUAGE plpgsql AS $$
DECLARE
  st __SCHEMA__.streams%ROWTYPE;
  n integer;
BEGIN
  LOOP
    SELECT * INTO st FROM __SCHEMA__.streams x WHERE x.company_id = p_company AND x.stream = p_stream FOR UPDATE;
    EXIT WHEN FOUND;
    INSERT INTO __SCHEMA__.streams (company_id, stream, epoch, top, trimmed, expired, first, last_ts, touched_at, key_count)
    VALUES (p_company, p_stream, p_epoch, 0, 0, 0, 1, 0, p_now, 0)
    ON CONFLICT DO NOTHING;
  END LOOP;
  n_expired := 0;
  IF st.touched_at + p_ttl_ms + p_idle_ms <= p_now THEN
    -- Forgotten: what it still holds expired with it, unread, and is not counted.
    DELETE FROM __SCHEMA__.stream_entries e WHERE e.company_id = p_company AND e.stream = p_stream;
    DELETE FROM __SCHEMA__.stream_keys k WHERE k.company_id = p_company AND k.stream = p_stream;
    st.epoch := p_epoch;
    st.top := 0;
    st.trimmed := 0;
    st.expired := 0;
    st.first := 1;
    st.last_ts := 0;
    st.key_count := 0;
  ELSIF st.first <= st.top AND EXISTS (
    SELECT 1 FROM __SCHEMA__.stream_entries e
    WHERE e.company_id = p_company AND e.stream = p_stream AND e.entry_offset = st.first AND e.ts + p_ttl_ms <= p_now
  ) THEN
    LOOP
      WITH gone AS (
        DELETE FROM __SCHEMA__.stream_entries e
        WHERE e.company_id = p_company AND e.stream = p_stream
          AND e.entry_offset >= st.first AND e.entry_offset < st.first + 64 AND e.ts + p_ttl_ms <= p_now
        RETURNING 1
      ) SELECT count(*) INTO n FROM gone;
      n_expired := n_expired + n;
      st.first := st.first + n;
      EXIT WHEN n < 64;
    END LOOP;
    st.expired := st.first - 1;
  END IF;
  s_epoch := st.epoch;
  s_top := st.top;
  s_trimmed := st.trimmed;
  s_expired := st.expired;
  s_first := st.first;
  s_last_ts := st.last_ts;
  s_key_count := st.key_count;
END;
$$;

CREATE OR REPLACE FUNCTION __SCHEMA__.stream_count(p_slot integer, p_trimmed bigint, p_expired bigint)
RETURNS void LANGUAGE sql AS $$
  INSERT INTO __SCHEMA__.stream_totals (slot, trimmed, expired) VALUES (p_slot, p_trimmed, p_expired)
  ON CONFLICT (slot) DO UPDATE SET trimmed = __SCHEMA__.stream_totals.trimmed + excluded.trimmed,
                                   expired = __SCHEMA__.stream_totals.expired + excluded.expired
$$;

-- One append under the stream's row lock: the idempotency key's lookup, the
-- next offset, the insert, the trims by age and to the size, and the key's
-- record. A key whose first entry is younger than the TTL is a duplicate:
-- nothing is stored, and its entry is returned while the cap has kept it
-- (kept). Keys past the TTL, then the oldest past p_max_keys, are forgotten.
-- p_lock_timeout_ms bounds the wait for the stream's lock (NULL: the session's).
CREATE OR REPLACE FUNCTION __SCHEMA__.stream_append(
  p_company text, p_stream text, p_epoch text, p_event text, p_data text, p_key text,
  p_ttl_ms bigint, p_idle_ms bigint, p_size bigint, p_max_keys integer, p_slot integer, p_lock_timeout_ms integer DEFAULT NULL,
  OUT r_epoch text, OUT r_offset bigint, OUT r_ts bigint, OUT duplicate boolean, OUT kept boolean, OUT r_event text, OUT r_data text)
LANGUAGE plpgsql AS $$
DECLARE
  now_ms bigint := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint;
  st record;
  prior record;
  n_over bigint := 0;
  n integer;
BEGIN
  IF p_lock_timeout_ms IS NOT NULL THEN
    PERFORM set_config('lock_timeout', p_lock_timeout_ms || 'ms', true);
  END IF;
  SELECT * INTO st FROM __SCHEMA__.stream_open(p_company, p_stream, p_epoch, now_ms, p_ttl_ms, p_idle_ms);
  r_epoch := st.s_epoch;

  IF p_key IS NOT NULL THEN
    SELECT k.entry_offset, k.ts INTO prior FROM __SCHEMA__.stream_keys k
    WHERE k.company_id = p_company AND k.stream = p_stream AND k.key = p_key;
    IF FOUND AND prior.ts + p_ttl_ms > now_ms THEN
      r_offset := prior.entry_offset;
      r_ts := prior.ts;
      duplicate := true;
      SELECT e.event, e.data INTO r_event, r_data FROM __SCHEMA__.stream_entries e
      WHERE e.company_id = p_company AND e.stream = p_stream AND e.entry_offset = prior.entry_offset;
      kept := FOUND;
      UPDATE __SCHEMA__.streams x SET touched_at = now_ms, first = st.s_first, expired = st.s_expired
      WHERE x.company_id = p_company AND x.stream = p_stream;
      IF st.n_expired > 0 THEN
        PERFORM __SCHEMA__.stream_count(p_slot, 0, st.n_expired);
      END IF;
      RETURN;
    END IF;
  END IF;

  duplicate := false;
  kept := true;
  r_event := p_event;
  r_data := p_data;
  r_offset := st.s_top + 1;
  r_ts := GREATEST(now_ms, st.s_last_ts);
  INSERT INTO __SCHEMA__.stream_entries (company_id, stream, entry_offset, ts, event, data)
  VALUES (p_company, p_stream, r_offset, r_ts, p_event, p_data);
  IF st.s_first > r_offset THEN
    st.s_first := r_offset;
  END IF;
  IF r_offset - st.s_first + 1 > p_size THEN
    n_over := r_offset - p_size + 1 - st.s_first;
    DELETE FROM __SCHEMA__.stream_entries e
    WHERE e.company_id = p_company AND e.stream = p_stream AND e.entry_offset < r_offset - p_size + 1;
    st.s_first := r_offset - p_size + 1;
    st.s_trimmed := r_offset - p_size;
  END IF;

  IF p_key IS NOT NULL THEN
    WITH gone AS (
      DELETE FROM __SCHEMA__.stream_keys k
      WHERE k.company_id = p_company AND k.stream = p_stream AND k.ts <= now_ms - p_ttl_ms RETURNING 1
    ) SELECT count(*) INTO n FROM gone;
    st.s_key_count := st.s_key_count - n;
    IF st.s_key_count + 1 > p_max_keys THEN
      WITH oldest AS (
        SELECT k.key FROM __SCHEMA__.stream_keys k
        WHERE k.company_id = p_company AND k.stream = p_stream ORDER BY k.ts, k.entry_offset LIMIT st.s_key_count + 1 - p_max_keys
      ), gone AS (
        DELETE FROM __SCHEMA__.stream_keys k USING oldest
        WHERE k.company_id = p_company AND k.stream = p_stream AND k.key = oldest.key RETURNING 1
      ) SELECT count(*) INTO n FROM gone;
      st.s_key_count := st.s_key_count - n;
    END IF;
    INSERT INTO __SCHEMA__.stream_keys (company_id, stream, key, entry_offset, ts) VALUES (p_company, p_stream, p_key, r_offset, r_ts);
    st.s_key_count := st.s_key_count + 1;
  END IF;

  UPDATE __SCHEMA__.streams x
  SET epoch = st.s_epoch, top = r_offset, trimmed = st.s_trimmed, expired = st.s_expired, first = st.s_first,
      last_ts = r_ts, touched_at = now_ms, key_count = st.s_key_count
  WHERE x.company_id = p_company AND x.stream = p_stream;
  IF n_over > 0 OR st.n_expired > 0 THEN
    PERFORM __SCHEMA__.stream_count(p_slot, n_over, st.n_expired);
  END IF;
END;
$$;

-- Why the entries right after p_after are gone, if they are: the highest
-- offset each cause dropped says which dropped the next one.
CREATE OR REPLACE FUNCTION __SCHEMA__.stream_gap(p_after bigint, p_first bigint, p_top bigint, p_trimmed bigint, p_expired bigint)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN NOT (p_after + 1 < p_first AND p_after < p_top) THEN NULL
    WHEN (p_after + 1 > LEAST(p_trimmed, p_expired)) = (p_trimmed < p_expired) THEN 'HISTORY_EXPIRED'
    ELSE 'HISTORY_TRIMMED'
  END
$$;

-- A read. When the stream exists, nothing at its head has expired and it was
-- touched within p_touch_ms, it is answered from one snapshot, without a
-- lock or a write, so the reads of many devices (re)connecting at once do
-- not queue on the stream's row. Otherwise it runs under the row lock:
-- applies the TTL (counting what it drops), keeps the stream alive like an
-- append, so the epoch a reader saw is the one the next append uses, and
-- creates the stream (fixing its epoch) when it has none. Returns the state
-- in every row, and the entries (no entry row when there are none: then
-- r_offset is NULL).
CREATE OR REPLACE FUNCTION __SCHEMA__.stream_read(
  p_company text, p_stream text, p_epoch text, p_after bigint, p_limit integer,
  p_ttl_ms bigint, p_idle_ms bigint, p_slot integer, p_touch_ms bigint, p_lock_timeout_ms integer DEFAULT NULL)
RETURNS TABLE (r_epoch text, r_top bigint, r_gap text, r_offset bigint, r_ts bigint, r_event text, r_data text)
LANGUAGE plpgsql AS $$
DECLARE
  now_ms bigint := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint;
  st record;
  peek record;
  start bigint;
BEGIN
  SELECT x.epoch, x.top, x.trimmed, x.expired, x.first, x.touched_at,
         (SELECT h.ts FROM __SCHEMA__.stream_entries h
          WHERE h.company_id = p_company AND h.stream = p_stream AND h.entry_offset = x.first) AS head_ts,
         page.offsets, page.tss, page.events, page.datas
  INTO peek
  FROM __SCHEMA__.streams x
  LEFT JOIN LATERAL (
    SELECT array_agg(y.entry_offset ORDER BY y.entry_offset) AS offsets, array_agg(y.ts ORDER BY y.entry_offset) AS tss,
           array_agg(y.event ORDER BY y.entry_offset) AS events, array_agg(y.data ORDER BY y.entry_offset) AS datas
    FROM (
      SELECT z.entry_offset, z.ts, z.event, z.data FROM __SCHEMA__.stream_entries z
      WHERE z.company_id = p_company AND z.stream = p_stream
        AND z.entry_offset >= GREATEST(p_after + 1, x.first) AND z.entry_offset <= x.top AND p_limit > 0
      ORDER BY z.entry_offset LIMIT p_limit
    ) y
  ) page ON true
  WHERE x.company_id = p_company AND x.stream = p_stream;
  IF FOUND AND now_ms - peek.touched_at < p_touch_ms AND (peek.first > peek.top OR peek.head_ts + p_ttl_ms > now_ms) THEN
    RETURN QUERY
      SELECT peek.epoch, peek.top, __SCHEMA__.stream_gap(p_after, peek.first, peek.top, peek.trimmed, peek.expired), u.o, u.t, u.ev, u.d
      FROM (SELECT 1) one
      LEFT JOIN unnest(peek.offsets, peek.tss, peek.events, peek.datas) WITH ORDINALITY AS u(o, t, ev, d, n) ON true
      ORDER BY u.n;
    RETURN;
  END IF;

  IF p_lock_timeout_ms IS NOT NULL THEN
    PERFORM set_config('lock_timeout', p_lock_timeout_ms || 'ms', true);
  END IF;
  SELECT * INTO st FROM __SCHEMA__.stream_open(p_company, p_stream, p_epoch, now_ms, p_ttl_ms, p_idle_ms);
  UPDATE __SCHEMA__.streams x
  SET epoch = st.s_epoch, top = st.s_top, trimmed = st.s_trimmed, expired = st.s_expired, first = st.s_first,
      last_ts = st.s_last_ts, touched_at = now_ms, key_count = st.s_key_count
  WHERE x.company_id = p_company AND x.stream = p_stream;
  IF st.n_expired > 0 THEN
    PERFORM __SCHEMA__.stream_count(p_slot, 0, st.n_expired);
  END IF;
  start := GREATEST(p_after + 1, st.s_first);
  RETURN QUERY
    SELECT st.s_epoch, st.s_top, __SCHEMA__.stream_gap(p_after, st.s_first, st.s_top, st.s_trimmed, st.s_expired),
           e.entry_offset, e.ts, e.event, e.data
    FROM (SELECT 1) one
    LEFT JOIN (
      SELECT x.entry_offset, x.ts, x.event, x.data FROM __SCHEMA__.stream_entries x
      WHERE x.company_id = p_company AND x.stream = p_stream AND x.entry_offset >= start AND p_limit > 0
      ORDER BY x.entry_offset LIMIT p_limit
    ) e ON true
    ORDER BY e.entry_offset;
END;
$$;

-- The bounded sweep: streams untouched for ttl + idle, at most p_batch a
-- call, are forgotten with their entries and keys (their next append or read
-- would start a new epoch anyway). Returns how many it forgot.
CREATE OR REPLACE FUNCTION __SCHEMA__.stream_sweep(p_ttl_ms bigint, p_idle_ms bigint, p_batch integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  now_ms bigint := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint;
  st record;
  forgotten integer := 0;
BEGIN
  FOR st IN
    SELECT x.company_id, x.stream FROM __SCHEMA__.streams x
    WHERE x.touched_at + p_ttl_ms + p_idle_ms <= now_ms LIMIT p_batch FOR UPDATE SKIP LOCKED
  LOOP
    DELETE FROM __SCHEMA__.stream_entries e WHERE e.company_id = st.company_id AND e.stream = st.stream;
    DELETE FROM __SCHEMA__.stream_keys k WHERE k.company_id = st.company_id AND k.stream = st.stream;
    DELETE FROM __SCHEMA__.streams x WHERE x.company_id = st.company_id AND x.stream = st.stream;
    forgotten := forgotten + 1;
  END LOOP;
  RETURN forgotten;
END;
$$;
