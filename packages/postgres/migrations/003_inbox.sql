-- Per-user message logs for the inbox store (postgresStores().inbox).
--
-- Each user of a company has a row in `inbox_users` that every append locks
-- and that assigns the next id (`<ms>-<seq>` by the server's clock, like a
-- Redis Stream id, strictly increasing per user). Messages past the TTL and
-- past the length cap are deleted by the append (and by a read, for the TTL)
-- and counted in `inbox_totals`; idempotency keys live in `inbox_keys`, each
-- device's read cursor in `inbox_cursors`.

CREATE TABLE IF NOT EXISTS __SCHEMA__.inbox_users (
  company_id text    NOT NULL,
  user_id    text    NOT NULL,
  -- The last id assigned.
  last_ms    bigint  NOT NULL,
  last_seq   bigint  NOT NULL,
  -- Rows in inbox_messages and inbox_keys, so the caps need no count.
  length     integer NOT NULL,
  key_count  integer NOT NULL,
  PRIMARY KEY (company_id, user_id)
);

CREATE TABLE IF NOT EXISTS __SCHEMA__.inbox_messages (
  company_id text   NOT NULL,
  user_id    text   NOT NULL,
  ms         bigint NOT NULL,
  seq        bigint NOT NULL,
  event      text   NOT NULL,
  -- The data as JSON text, NULL when it was undefined.
  data       text,
  PRIMARY KEY (company_id, user_id, ms, seq)
);

CREATE TABLE IF NOT EXISTS __SCHEMA__.inbox_keys (
  company_id text   NOT NULL,
  user_id    text   NOT NULL,
  key        text   NOT NULL,
  -- The id of the first message appended with the key.
  ms         bigint NOT NULL,
  seq        bigint NOT NULL,
  PRIMARY KEY (company_id, user_id, key)
);
CREATE INDEX IF NOT EXISTS inbox_keys_by_age ON __SCHEMA__.inbox_keys (company_id, user_id, ms, seq);

CREATE TABLE IF NOT EXISTS __SCHEMA__.inbox_cursors (
  company_id text   NOT NULL,
  user_id    text   NOT NULL,
  device_id  text   NOT NULL,
  ms         bigint NOT NULL,
  seq        bigint NOT NULL,
  PRIMARY KEY (company_id, user_id, device_id)
);

-- What the TTL and the cap dropped, spread over a few rows (slots) so that
-- concurrent appends seldom wait on one another to count.
CREATE TABLE IF NOT EXISTS __SCHEMA__.inbox_totals (
  slot     integer PRIMARY KEY,
  expired  bigint  NOT NULL DEFAULT 0,
  over_cap bigint  NOT NULL DEFAULT 0
);

CREATE OR REPLACE FUNCTION __SCHEMA__.inbox_count(p_slot integer, p_expired bigint, p_over_cap bigint)
RETURNS void LANGUAGE sql AS $$
  INSERT INTO __SCHEMA__.inbox_totals (slot, expired, over_cap) VALUES (p_slot, p_expired, p_over_cap)
  ON CONFLICT (slot) DO UPDATE SET expired = __SCHEMA__.inbox_totals.expired + excluded.expired,
                                   over_cap = __SCHEMA__.inbox_totals.over_cap + excluded.over_cap
$$;

-- One append under the user's row lock: the idempotency key's lookup, the
-- id, the insert, the trims by age and to the cap, and the key's record.
-- A key whose first message is younger than the TTL is a duplicate: nothing
-- is written, and the first message is returned while the cap has kept it
-- (kept). Keys past the TTL, then the oldest past p_max_keys, are forgotten.
-- p_lock_timeout_ms bounds the wait for the user's lock (NULL: the session's).
CREATE OR REPLACE FUNCTION __SCHEMA__.inbox_append(
  p_company text, p_user text, p_event text, p_data text, p_key text,
  p_ttl_ms bigint, p_max_length integer, p_max_keys integer, p_slot integer, p_lock_timeout_ms integer DEFAULT NULL,
  OUT ms bigint, OUT seq bigint, OUT duplicate boolean, OUT kept boolean, OUT event text, OUT data text)
LANGUAGE plpgsql AS $$
DECLARE
  now_ms bigint := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint;
  min_ms bigint := now_ms - p_ttl_ms + 1;
  usr __SCHEMA__.inbox_users%ROWTYPE;
  prior record;
  n_expired integer;
  n_over integer := 0;
  n_keys integer;
BEGIN
  IF p_lock_timeout_ms IS NOT NULL THEN
    PERFORM set_config('lock_timeout', p_lock_timeout_ms || 'ms', true);
  END IF;
  LOOP
    SELECT * INTO usr FROM __SCHEMA__.inbox_users u WHERE u.company_id = p_company AND u.user_id = p_user FOR UPDATE;
    EXIT WHEN FOUND;
    INSERT INTO __SCHEMA__.inbox_users (company_id, user_id, last_ms, last_seq, length, key_count)
    VALUES (p_company, p_user, 0, 0, 0, 0)
    ON CONFLICT DO NOTHING;
  END LOOP;

  IF p_key IS NOT NULL THEN
    SELECT k.ms, k.seq INTO prior FROM __SCHEMA__.inbox_keys k
    WHERE k.company_id = p_company AND k.user_id = p_user AND k.key = p_key;
    IF FOUND AND prior.ms >= min_ms THEN
      ms := prior.ms;
      seq := prior.seq;
      duplicate := true;
      SELECT m.event, m.data INTO event, data FROM __SCHEMA__.inbox_messages m
      WHERE m.company_id = p_company AND m.user_id = p_user AND m.ms = prior.ms AND m.seq = prior.seq;
      kept := FOUND;
      RETURN;
    END IF;
  END IF;

  IF now_ms > usr.last_ms THEN
    ms := now_ms;
    seq := 0;
  ELSE
    ms := usr.last_ms;
    seq := usr.last_seq + 1;
  END IF;
  duplicate := false;
  kept := true;
  event := p_event;
  data := p_data;
  INSERT INTO __SCHEMA__.inbox_messages (company_id, user_id, ms, seq, event, data) VALUES (p_company, p_user, ms, seq, p_event, p_data);

  WITH gone AS (
    DELETE FROM __SCHEMA__.inbox_messages m WHERE m.company_id = p_company AND m.user_id = p_user AND m.ms < min_ms RETURNING 1
  ) SELECT count(*) INTO n_expired FROM gone;
  usr.length := usr.length + 1 - n_expired;
  IF usr.length > p_max_length THEN
    WITH oldest AS (
      SELECT m.ms, m.seq FROM __SCHEMA__.inbox_messages m
      WHERE m.company_id = p_company AND m.user_id = p_user ORDER BY m.ms, m.seq LIMIT usr.length - p_max_length
    ), gone AS (
      DELETE FROM __SCHEMA__.inbox_messages m USING oldest
      WHERE m.company_id = p_company AND m.user_id = p_user AND m.ms = oldest.ms AND m.seq = oldest.seq RETURNING 1
    ) SELECT count(*) INTO n_over FROM gone;
    usr.length := usr.length - n_over;
  END IF;

  IF p_key IS NOT NULL THEN
    WITH gone AS (
      DELETE FROM __SCHEMA__.inbox_keys k WHERE k.company_id = p_company AND k.user_id = p_user AND k.ms < min_ms RETURNING 1
    ) SELECT count(*) INTO n_keys FROM gone;
    usr.key_count := usr.key_count - n_keys;
    IF usr.key_count + 1 > p_max_keys THEN
      WITH oldest AS (
        SELECT k.key FROM __SCHEMA__.inbox_keys k
        WHERE k.company_id = p_company AND k.user_id = p_user ORDER BY k.ms, k.seq LIMIT usr.key_count + 1 - p_max_keys
      ), gone AS (
        DELETE FROM __SCHEMA__.inbox_keys k USING oldest
        WHERE k.company_id = p_company AND k.user_id = p_user AND k.key = oldest.key RETURNING 1
      ) SELECT count(*) INTO n_keys FROM gone;
      usr.key_count := usr.key_count - n_keys;
    END IF;
    INSERT INTO __SCHEMA__.inbox_keys (company_id, user_id, key, ms, seq) VALUES (p_company, p_user, p_key, ms, seq);
    usr.key_count := usr.key_count + 1;
  END IF;

  UPDATE __SCHEMA__.inbox_users u SET last_ms = ms, last_seq = seq, length = usr.length, key_count = usr.key_count
  WHERE u.company_id = p_company AND u.user_id = p_user;
  IF n_expired > 0 OR n_over > 0 THEN
    PERFORM __SCHEMA__.inbox_count(p_slot, n_expired, n_over);
  END IF;
END;
$$;

-- A read: drops (and counts) what the TTL expired, under the user's row
-- lock, then returns up to p_limit messages after (p_after_ms, p_after_seq).
CREATE OR REPLACE FUNCTION __SCHEMA__.inbox_read(
  p_company text, p_user text, p_after_ms bigint, p_after_seq bigint, p_limit integer, p_ttl_ms bigint, p_slot integer,
  p_lock_timeout_ms integer DEFAULT NULL)
RETURNS TABLE (ms bigint, seq bigint, event text, data text)
LANGUAGE plpgsql AS $$
DECLARE
  min_ms bigint := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint - p_ttl_ms + 1;
  n_expired integer;
BEGIN
  IF p_lock_timeout_ms IS NOT NULL THEN
    PERFORM set_config('lock_timeout', p_lock_timeout_ms || 'ms', true);
  END IF;
  IF EXISTS (SELECT 1 FROM __SCHEMA__.inbox_messages m WHERE m.company_id = p_company AND m.user_id = p_user AND m.ms < min_ms) THEN
    PERFORM 1 FROM __SCHEMA__.inbox_users u WHERE u.company_id = p_company AND u.user_id = p_user FOR UPDATE;
    WITH gone AS (
      DELETE FROM __SCHEMA__.inbox_messages m WHERE m.company_id = p_company AND m.user_id = p_user AND m.ms < min_ms RETURNING 1
    ) SELECT count(*) INTO n_expired FROM gone;
    IF n_expired > 0 THEN
      UPDATE __SCHEMA__.inbox_users u SET length = u.length - n_expired WHERE u.company_id = p_company AND u.user_id = p_user;
      PERFORM __SCHEMA__.inbox_count(p_slot, n_expired, 0);
    END IF;
  END IF;
  RETURN QUERY
    SELECT m.ms, m.seq, m.event, m.data FROM __SCHEMA__.inbox_messages m
    WHERE m.company_id = p_company AND m.user_id = p_user AND (m.ms, m.seq) > (p_after_ms, p_after_seq) AND m.ms >= min_ms
    ORDER BY m.ms, m.seq LIMIT p_limit;
END;
$$;

-- The bounded sweep: users whose newest message is past the TTL (so all
-- their messages and keys are) lose them, at most p_batch users a call, and
-- what it drops is counted as expired. Cursors stay, as acks are the
-- devices' own. Returns how many users it cleared.
CREATE OR REPLACE FUNCTION __SCHEMA__.inbox_sweep(p_ttl_ms bigint, p_batch integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  min_ms bigint := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint - p_ttl_ms + 1;
  usr record;
  n_expired integer;
  cleared integer := 0;
  total bigint := 0;
BEGIN
  FOR usr IN
    SELECT u.company_id, u.user_id FROM __SCHEMA__.inbox_users u WHERE u.last_ms < min_ms LIMIT p_batch FOR UPDATE SKIP LOCKED
  LOOP
    WITH gone AS (
      DELETE FROM __SCHEMA__.inbox_messages m WHERE m.company_id = usr.company_id AND m.user_id = usr.user_id RETURNING 1
    ) SELECT count(*) INTO n_expired FROM gone;
    DELETE FROM __SCHEMA__.inbox_keys k WHERE k.company_id = usr.company_id AND k.user_id = usr.user_id;
    DELETE FROM __SCHEMA__.inbox_users u WHERE u.company_id = usr.company_id AND u.user_id = usr.user_id;
    total := total + n_expired;
    cleared := cleared + 1;
  END LOOP;
  IF total > 0 THEN
    PERFORM __SCHEMA__.inbox_count(0, total, 0);
  END IF;
  RETURN cleared;
END;
$$;
