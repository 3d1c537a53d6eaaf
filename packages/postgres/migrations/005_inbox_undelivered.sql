-- Undelivered calls of the inbox store (the engine's `undelivered` hook).
--
-- A row per message whose call is pending: recorded by
-- `inbox_append_undelivered` in the append's statement, deleted by an ack
-- that covers its message, leased by `inbox_claim_undelivered` (which moves
-- `due_at` to the end of the lease and counts the attempt) and ended by
-- `inbox_settle_undelivered`. Each row references its message, so whatever
-- drops the message (the TTL, the cap, the sweep) drops its call with it:
-- pending calls never outnumber the messages the inbox keeps.

CREATE TABLE IF NOT EXISTS __SCHEMA__.inbox_undelivered (
  company_id text    NOT NULL,
  user_id    text    NOT NULL,
  ms         bigint  NOT NULL,
  seq        bigint  NOT NULL,
  -- When it may next be claimed: its due time, or the end of its lease (epoch ms, the server's clock).
  due_at     bigint  NOT NULL,
  -- Claims so far; a settle names the attempt it ends, so a stale one changes nothing.
  attempts   integer NOT NULL DEFAULT 0,
  PRIMARY KEY (company_id, user_id, ms, seq),
  FOREIGN KEY (company_id, user_id, ms, seq) REFERENCES __SCHEMA__.inbox_messages (company_id, user_id, ms, seq) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS inbox_undelivered_by_due ON __SCHEMA__.inbox_undelivered (due_at);

-- inbox_append, then the message's call, due p_after_ms after its id's ms,
-- in the same transaction; a duplicate records none (the first append did).
CREATE OR REPLACE FUNCTION __SCHEMA__.inbox_append_undelivered(
  p_company text, p_user text, p_event text, p_data text, p_key text,
  p_ttl_ms bigint, p_max_length integer, p_max_keys integer, p_slot integer, p_after_ms bigint, p_lock_timeout_ms integer DEFAULT NULL,
  OUT ms bigint, OUT seq bigint, OUT duplicate boolean, OUT kept boolean, OUT event text, OUT data text)
LANGUAGE plpgsql AS $$
BEGIN
  SELECT a.ms, a.seq, a.duplicate, a.kept, a.event, a.data INTO ms, seq, duplicate, kept, event, data
  FROM __SCHEMA__.inbox_append(p_company, p_user, p_event, p_data, p_key, p_ttl_ms, p_max_length, p_max_keys, p_slot, p_lock_timeout_ms) a;
  IF NOT duplicate THEN
    INSERT INTO __SCHEMA__.inbox_undelivered (company_id, user_id, ms, seq, due_at) VALUES (p_company, p_user, ms, seq, ms + p_after_ms);
  END IF;
END;
$$;

-- Leases up to p_limit due calls for p_lease_ms, earliest due first,
-- skipping rows another claimer holds, and returns them with their
-- messages. Calls of messages past the TTL (not yet deleted) are deleted
-- instead of claimed.
CREATE OR REPLACE FUNCTION __SCHEMA__.inbox_claim_undelivered(p_limit integer, p_lease_ms bigint, p_ttl_ms bigint)
RETURNS TABLE (company_id text, user_id text, ms bigint, seq bigint, attempts integer, event text, data text)
LANGUAGE plpgsql AS $$
DECLARE
  now_ms bigint := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint;
BEGIN
  DELETE FROM __SCHEMA__.inbox_undelivered u
  WHERE u.due_at <= now_ms AND u.ms < now_ms - p_ttl_ms + 1;
  RETURN QUERY
    WITH due AS (
      SELECT u.company_id, u.user_id, u.ms, u.seq FROM __SCHEMA__.inbox_undelivered u
      WHERE u.due_at <= now_ms ORDER BY u.due_at LIMIT p_limit FOR UPDATE SKIP LOCKED
    ), leased AS (
      UPDATE __SCHEMA__.inbox_undelivered u SET due_at = now_ms + p_lease_ms, attempts = u.attempts + 1
      FROM due WHERE u.company_id = due.company_id AND u.user_id = due.user_id AND u.ms = due.ms AND u.seq = due.seq
      RETURNING u.company_id, u.user_id, u.ms, u.seq, u.attempts
    )
    SELECT l.company_id, l.user_id, l.ms, l.seq, l.attempts, m.event, m.data
    FROM leased l JOIN __SCHEMA__.inbox_messages m
      ON m.company_id = l.company_id AND m.user_id = l.user_id AND m.ms = l.ms AND m.seq = l.seq
    ORDER BY l.ms, l.seq;
END;
$$;

-- Ends the claim of attempt p_attempt: deleted (p_retry_ms NULL) or due
-- again p_retry_ms from now. A stale claim (another attempt since, or the
-- call cancelled) matches no row.
CREATE OR REPLACE FUNCTION __SCHEMA__.inbox_settle_undelivered(
  p_company text, p_user text, p_ms bigint, p_seq bigint, p_attempt integer, p_retry_ms bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF p_retry_ms IS NULL THEN
    DELETE FROM __SCHEMA__.inbox_undelivered u
    WHERE u.company_id = p_company AND u.user_id = p_user AND u.ms = p_ms AND u.seq = p_seq AND u.attempts = p_attempt;
  ELSE
    UPDATE __SCHEMA__.inbox_undelivered u SET due_at = floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint + p_retry_ms
    WHERE u.company_id = p_company AND u.user_id = p_user AND u.ms = p_ms AND u.seq = p_seq AND u.attempts = p_attempt;
  END IF;
END;
$$;
