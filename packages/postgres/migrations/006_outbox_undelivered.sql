-- A toUser row's `undelivered` choice (outbox toUser(...).emit(event, data,
-- { undelivered })), handed by the relay to the engine's toUser(...).emit.
--
-- One jsonb column holding the option as the application gave it: `false`
-- (no undelivered call) or {"afterMs": n}; NULL when it gave none, so the
-- engine's `undelivered.events` and `afterMs` decide. A single integer
-- column could not tell "not given" from `false` without a magic value.
-- Added without a default: no rewrite of a table with rows pending.

ALTER TABLE __SCHEMA__.outbox ADD COLUMN IF NOT EXISTS undelivered jsonb
  CONSTRAINT outbox_undelivered_shape CHECK (
    undelivered IS NULL
    OR (kind = 'user' AND (undelivered = 'false'::jsonb OR jsonb_typeof(undelivered -> 'afterMs') = 'number'))
  );
