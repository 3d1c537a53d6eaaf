-- Versioned JSON documents for the document store (postgresStores().documents).
--
-- `documents` holds each document's latest version, so an application can
-- read a document with plain SQL; `document_versions` holds its history
-- (the latest included), trimmed to maxHistory versions and maxHistoryBytes
-- bytes. The mutation tables remember which writes committed, per writer, so
-- a retried write never commits twice. Every change goes through
-- document_compare_and_set(), which locks the document's row, so two writers
-- that expect the same version never both commit.

CREATE TABLE IF NOT EXISTS __SCHEMA__.documents (
  company_id    text   NOT NULL,
  type          text   NOT NULL,
  id            text   NOT NULL,
  -- A surrogate key for the tables below, so their indexes stay small.
  doc           bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  version       bigint NOT NULL,
  data          json   NOT NULL,
  updated_at    bigint NOT NULL,
  updated_by    text,
  -- Oldest version still in document_versions, and the bytes of data kept there.
  history_from  bigint NOT NULL,
  history_bytes bigint NOT NULL,
  -- The document's mutation horizon (epoch ms): a mutation made at or before it may have been forgotten.
  forgotten     bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (company_id, type, id)
);

CREATE TABLE IF NOT EXISTS __SCHEMA__.document_versions (
  doc        bigint  NOT NULL REFERENCES __SCHEMA__.documents (doc) ON DELETE CASCADE,
  version    bigint  NOT NULL,
  data       json    NOT NULL,
  -- UTF-8 length of the data as JSON, what maxHistoryBytes counts.
  bytes      integer NOT NULL,
  updated_at bigint  NOT NULL,
  updated_by text,
  PRIMARY KEY (doc, version)
);

CREATE TABLE IF NOT EXISTS __SCHEMA__.document_mutations (
  doc         bigint NOT NULL REFERENCES __SCHEMA__.documents (doc) ON DELETE CASCADE,
  mutation_id text   NOT NULL,
  writer      text   NOT NULL,
  version     bigint NOT NULL,
  recorded_at bigint NOT NULL,
  PRIMARY KEY (doc, mutation_id)
);
CREATE INDEX IF NOT EXISTS document_mutations_by_writer ON __SCHEMA__.document_mutations (doc, writer, recorded_at, version);

-- The writers whose records a document keeps, with their newest record's time.
CREATE TABLE IF NOT EXISTS __SCHEMA__.document_mutation_writers (
  doc    bigint NOT NULL REFERENCES __SCHEMA__.documents (doc) ON DELETE CASCADE,
  writer text   NOT NULL,
  newest bigint NOT NULL,
  PRIMARY KEY (doc, writer)
);

-- Per writer, the time at or before which its mutations may have been forgotten.
CREATE TABLE IF NOT EXISTS __SCHEMA__.document_mutation_horizons (
  doc     bigint NOT NULL REFERENCES __SCHEMA__.documents (doc) ON DELETE CASCADE,
  writer  text   NOT NULL,
  horizon bigint NOT NULL,
  PRIMARY KEY (doc, writer)
);

-- One compare-and-set: the mutation check, the version check, the write, the
-- history push and trim and the mutation's record, in one statement under the
-- document's row lock. Times (p_now, p_cutoff = p_now - mutationTtlMs) come
-- from the caller, as `updatedAt` does. The bookkeeping follows
-- DocumentStore.compareAndSet in @truss/core step by step; each step forgets
-- at most 1,000 records per commit, so a lowered cap is reached over a few
-- commits.
-- outcome: 1 committed; 0 another version (or absent); 2 the mutation
-- committed `committed_version` before; 3 the mutation is too old to tell.
-- p_lock_timeout_ms bounds the wait for the document's lock (the store passes
-- what is left of its call's timeout, so a call that gave up is not run later
-- on the server); NULL leaves the session's lock_timeout as it is.
-- The current_* columns describe the latest version for outcomes 0, 2 and 3.
CREATE OR REPLACE FUNCTION __SCHEMA__.document_compare_and_set(
  p_company text, p_type text, p_id text, p_expected bigint, p_data text, p_bytes integer,
  p_updated_by text, p_mutation text, p_writer text, p_made_at bigint, p_now bigint, p_cutoff bigint,
  p_max_history bigint, p_max_history_bytes bigint, p_max_mutations integer, p_max_writers integer, p_max_horizons integer,
  p_lock_timeout_ms integer DEFAULT NULL,
  OUT outcome integer, OUT current_version bigint, OUT current_data text, OUT current_updated_at bigint,
  OUT current_updated_by text, OUT committed_version bigint)
LANGUAGE plpgsql AS $$
DECLARE
  head __SCHEMA__.documents%ROWTYPE;
  created boolean := false;
  next_version bigint := p_expected + 1;
  dropped_bytes bigint;
  pushed bigint;
  other record;
  surplus integer;
BEGIN
  IF p_lock_timeout_ms IS NOT NULL THEN
    PERFORM set_config('lock_timeout', p_lock_timeout_ms || 'ms', true);
  END IF;
  outcome := 0;
  LOOP
    SELECT * INTO head FROM __SCHEMA__.documents WHERE company_id = p_company AND type = p_type AND id = p_id FOR UPDATE;
    EXIT WHEN FOUND;
    -- No such document: no record of any mutation, and no horizon but the TTL.
    IF p_mutation IS NOT NULL AND p_made_at < p_cutoff THEN
      outcome := 3;
      RETURN;
    END IF;
    IF p_expected <> 0 THEN
      RETURN;
    END IF;
    INSERT INTO __SCHEMA__.documents (company_id, type, id, version, data, updated_at, updated_by, history_from, history_bytes)
    VALUES (p_company, p_type, p_id, 1, p_data::json, p_now, p_updated_by, 1, p_bytes)
    ON CONFLICT (company_id, type, id) DO NOTHING
    RETURNING * INTO head;
    -- Another writer created it first: lock it and compare as for any document.
    IF FOUND THEN
      created := true;
      EXIT;
    END IF;
  END LOOP;

  IF NOT created THEN
    current_version := head.version;
    current_data := head.data::text;
    current_updated_at := head.updated_at;
    current_updated_by := head.updated_by;
    IF p_mutation IS NOT NULL THEN
      SELECT version INTO committed_version FROM __SCHEMA__.document_mutations WHERE doc = head.doc AND mutation_id = p_mutation;
      IF FOUND THEN
        outcome := 2;
        RETURN;
      END IF;
      IF p_made_at < p_cutoff OR p_made_at <= GREATEST(head.forgotten, COALESCE(
        (SELECT horizon FROM __SCHEMA__.document_mutation_horizons WHERE doc = head.doc AND writer = p_writer), 0)) THEN
        outcome := 3;
        RETURN;
      END IF;
    END IF;
    IF head.version <> p_expected THEN
      RETURN;
    END IF;
    head.history_bytes := head.history_bytes + p_bytes;
    -- Past the count cap, then the oldest while over the byte cap, always keeping the new version.
    IF next_version - head.history_from + 1 > p_max_history THEN
      WITH gone AS (
        DELETE FROM __SCHEMA__.document_versions WHERE doc = head.doc AND version <= next_version - p_max_history RETURNING bytes
      ) SELECT COALESCE(sum(bytes), 0) INTO dropped_bytes FROM gone;
      head.history_bytes := head.history_bytes - dropped_bytes;
      head.history_from := next_version - p_max_history + 1;
    END IF;
    WHILE head.history_bytes > p_max_history_bytes AND head.history_from < next_version LOOP
      DELETE FROM __SCHEMA__.document_versions WHERE doc = head.doc AND version = head.history_from RETURNING bytes INTO dropped_bytes;
      head.history_bytes := head.history_bytes - COALESCE(dropped_bytes, 0);
      head.history_from := head.history_from + 1;
    END LOOP;
    -- The new version itself always stays: its bytes count even when they alone exceed the cap.
    UPDATE __SCHEMA__.documents
    SET version = next_version, data = p_data::json, updated_at = p_now, updated_by = p_updated_by,
        history_from = head.history_from, history_bytes = head.history_bytes
    WHERE doc = head.doc;
  END IF;

  INSERT INTO __SCHEMA__.document_versions (doc, version, data, bytes, updated_at, updated_by)
  VALUES (head.doc, next_version, p_data::json, p_bytes, p_now, p_updated_by);
  outcome := 1;
  current_version := NULL;
  current_data := NULL;
  current_updated_at := NULL;
  current_updated_by := NULL;
  IF p_mutation IS NULL THEN
    RETURN;
  END IF;

  INSERT INTO __SCHEMA__.document_mutations (doc, mutation_id, writer, version, recorded_at)
  VALUES (head.doc, p_mutation, p_writer, next_version, p_now);
  INSERT INTO __SCHEMA__.document_mutation_writers (doc, writer, newest) VALUES (head.doc, p_writer, p_now)
  ON CONFLICT (doc, writer) DO UPDATE SET newest = GREATEST(__SCHEMA__.document_mutation_writers.newest, excluded.newest);

  -- 1. The writer's own records past the TTL, then past its cap, oldest first; the cap raises its horizon.
  DELETE FROM __SCHEMA__.document_mutations m USING (
    SELECT mutation_id FROM __SCHEMA__.document_mutations
    WHERE doc = head.doc AND writer = p_writer AND recorded_at < p_cutoff
    ORDER BY recorded_at, version LIMIT 1000
  ) old WHERE m.doc = head.doc AND m.mutation_id = old.mutation_id;
  WITH over AS (
    SELECT mutation_id, recorded_at FROM __SCHEMA__.document_mutations
    WHERE doc = head.doc AND writer = p_writer
    ORDER BY recorded_at DESC, version DESC OFFSET p_max_mutations LIMIT 1000
  ), gone AS (
    DELETE FROM __SCHEMA__.document_mutations m USING over
    WHERE m.doc = head.doc AND m.mutation_id = over.mutation_id RETURNING over.recorded_at
  ) SELECT max(recorded_at) INTO pushed FROM gone;
  IF pushed IS NOT NULL THEN
    INSERT INTO __SCHEMA__.document_mutation_horizons (doc, writer, horizon) VALUES (head.doc, p_writer, pushed)
    ON CONFLICT (doc, writer) DO UPDATE SET horizon = GREATEST(__SCHEMA__.document_mutation_horizons.horizon, excluded.horizon);
  END IF;

  -- 2. Writers idle past the TTL, then the least recently committed past the writer cap.
  FOR i IN 1..8 LOOP
    SELECT writer, newest INTO other FROM __SCHEMA__.document_mutation_writers
    WHERE doc = head.doc AND writer <> p_writer ORDER BY newest, writer LIMIT 1;
    EXIT WHEN NOT FOUND;
    IF other.newest >= p_cutoff
      AND (SELECT count(*) FROM __SCHEMA__.document_mutation_writers WHERE doc = head.doc) <= p_max_writers THEN
      EXIT;
    END IF;
    DELETE FROM __SCHEMA__.document_mutations WHERE doc = head.doc AND writer = other.writer;
    DELETE FROM __SCHEMA__.document_mutation_writers WHERE doc = head.doc AND writer = other.writer;
    -- An idle writer needs no horizon: the TTL answers for all its mutations.
    IF other.newest >= p_cutoff THEN
      INSERT INTO __SCHEMA__.document_mutation_horizons (doc, writer, horizon) VALUES (head.doc, other.writer, other.newest)
      ON CONFLICT (doc, writer) DO UPDATE SET horizon = GREATEST(__SCHEMA__.document_mutation_horizons.horizon, excluded.horizon);
    END IF;
  END LOOP;

  -- 3. Horizons past the TTL, then the oldest past their cap, into the document's.
  DELETE FROM __SCHEMA__.document_mutation_horizons WHERE doc = head.doc AND horizon < p_cutoff;
  SELECT count(*) - p_max_horizons INTO surplus FROM __SCHEMA__.document_mutation_horizons WHERE doc = head.doc;
  IF surplus > 0 THEN
    WITH popped AS (
      SELECT writer FROM __SCHEMA__.document_mutation_horizons WHERE doc = head.doc ORDER BY horizon, writer LIMIT surplus
    ), gone AS (
      DELETE FROM __SCHEMA__.document_mutation_horizons h USING popped
      WHERE h.doc = head.doc AND h.writer = popped.writer RETURNING h.horizon
    ) SELECT max(horizon) INTO pushed FROM gone;
    UPDATE __SCHEMA__.documents SET forgotten = GREATEST(forgotten, pushed) WHERE doc = head.doc;
  END IF;
END;
$$;
