-- Device cursors expire with the messages they point past, so the cursors
-- of devices that never connect again (a phone replaced, an app reinstalled
-- with a new device id) do not stay in `inbox_cursors` for ever.
--
-- A cursor at (ms, seq) with ms older than the TTL is past every message a
-- read can still return: those are younger than the TTL, and ids only grow.
-- The device reads the same without it (from the oldest kept message), so
-- the bounded sweep deletes it, whether or not its user's inbox is in use.
-- `inbox_cursors_by_position` finds them oldest first without a scan of
-- the table.

CREATE INDEX IF NOT EXISTS inbox_cursors_by_position ON __SCHEMA__.inbox_cursors (ms);

-- The bounded sweep: users whose newest message is past the TTL (so all
-- their messages and keys are) lose them, at most p_batch users a call, and
-- what it drops is counted as expired; then at most p_batch cursors past the
-- TTL are deleted, the oldest first. A cursor an ack is moving right now is
-- skipped (SKIP LOCKED): it is about to be new. Returns how many users it
-- cleared.
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

  WITH stale AS (
    SELECT c.company_id, c.user_id, c.device_id FROM __SCHEMA__.inbox_cursors c
    WHERE c.ms < min_ms ORDER BY c.ms LIMIT p_batch
    FOR UPDATE SKIP LOCKED
  )
  DELETE FROM __SCHEMA__.inbox_cursors c USING stale s
  WHERE c.company_id = s.company_id AND c.user_id = s.user_id AND c.device_id = s.device_id;
  RETURN cleared;
END;
$$;
