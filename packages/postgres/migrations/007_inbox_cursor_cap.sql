-- Each user's inbox keeps at most `maxCursorsPerUser` device cursors, so a
-- client cycling device ids cannot grow `inbox_cursors` without bound.
--
-- `moved` orders a user's cursors by when each last moved: a sequence, so
-- the order is strict even within a millisecond. Cursors stored before this
-- migration get 0, the oldest, without a rewrite of the table; new rows and
-- moves take the next value. `inbox_ack` moves a cursor (never back),
-- cancels the undelivered calls it covers and forgets the user's cursors
-- moved longest ago past the cap, in one call.

CREATE SEQUENCE IF NOT EXISTS __SCHEMA__.inbox_cursor_moves;
ALTER TABLE __SCHEMA__.inbox_cursors ADD COLUMN IF NOT EXISTS moved bigint NOT NULL DEFAULT 0;
ALTER TABLE __SCHEMA__.inbox_cursors ALTER COLUMN moved SET DEFAULT nextval('__SCHEMA__.inbox_cursor_moves');
CREATE INDEX IF NOT EXISTS inbox_cursors_by_move ON __SCHEMA__.inbox_cursors (company_id, user_id, moved);

-- The cursors past the cap are chosen with SKIP LOCKED: a cursor another
-- ack is moving right now is about to be the newest, and waiting for it
-- could deadlock two acks of one user, each holding the row the other
-- would forget. The cap is then exceeded only for as long as those acks run.
CREATE OR REPLACE FUNCTION __SCHEMA__.inbox_ack(
  p_company text, p_user text, p_device text, p_ms bigint, p_seq bigint, p_max_cursors integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM __SCHEMA__.inbox_undelivered u
  WHERE u.company_id = p_company AND u.user_id = p_user AND (u.ms, u.seq) <= (p_ms, p_seq);
  INSERT INTO __SCHEMA__.inbox_cursors AS c (company_id, user_id, device_id, ms, seq) VALUES (p_company, p_user, p_device, p_ms, p_seq)
  ON CONFLICT (company_id, user_id, device_id) DO UPDATE SET ms = excluded.ms, seq = excluded.seq, moved = DEFAULT
  WHERE (c.ms, c.seq) < (excluded.ms, excluded.seq);
  IF NOT FOUND THEN
    RETURN;
  END IF;
  WITH forgotten AS (
    SELECT c.device_id FROM __SCHEMA__.inbox_cursors c
    WHERE c.company_id = p_company AND c.user_id = p_user
    ORDER BY c.moved DESC OFFSET p_max_cursors
    FOR UPDATE SKIP LOCKED
  )
  DELETE FROM __SCHEMA__.inbox_cursors c USING forgotten f
  WHERE c.company_id = p_company AND c.user_id = p_user AND c.device_id = f.device_id;
END;
$$;
