-- The outbox (postgresOutbox()): one row per event an application publishes
-- inside its own transaction, written by the same transaction, so a
-- rolled-back transaction leaves nothing to publish. Every node's relay
-- claims committed rows, publishes them through its engine and deletes them;
-- a row the engine refuses for good stays, with failed_at and its error code.
--
-- `stream` names the stream a row is published to (a company, a topic, a
-- user's inbox): the rows of one stream are published in id order, by one
-- relay at a time, because a relay holds the oldest pending row of each
-- stream it works on (SELECT ... FOR UPDATE SKIP LOCKED).

CREATE TABLE IF NOT EXISTS __SCHEMA__.outbox (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  stream          text        NOT NULL,
  kind            text        NOT NULL CHECK (kind IN ('company', 'topic', 'user')),
  company_id      text        NOT NULL,
  topic           text,
  user_id         text,
  event           text        NOT NULL,
  -- json, not jsonb: kept as the application's call checked and wrote it.
  data            json,
  -- The application's idempotency key; without one the row's id is the key.
  idempotency_key text,
  created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  failed_at       timestamptz,
  failed_code     text,
  failed_message  text
);

-- The relay's claims: the oldest pending row of each stream, then that stream's rows in order.
CREATE INDEX IF NOT EXISTS outbox_pending ON __SCHEMA__.outbox (stream, id) WHERE failed_at IS NULL;
-- Operators' view of what failed.
CREATE INDEX IF NOT EXISTS outbox_failed ON __SCHEMA__.outbox (failed_at) WHERE failed_at IS NOT NULL;
