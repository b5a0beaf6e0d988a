-- Table health at a million rows (issue 15, item 10): heartbeats as HOT updates, autovacuum
-- settings for a queue table, and status counters kept by trigger so that `/api/stats` never
-- counts the table. Measured with scripts/bench-table (bench/README.md).
--
-- Applying it holds the table (writers wait, nobody fails) for about a second per million rows:
-- the new index is built and the rows are counted once, in this migration's transaction.

-- 1. Heartbeats (`RENEW_LEASE`) change only `lease_expires_at`. PostgreSQL can make an update
--    HOT (a new tuple version on the same page, no new index entries, pruned in place) only when
--    no indexed column changes, and a partial index's predicate counts as indexed. The lease
--    reaper's index held `lease_expires_at`, so every heartbeat wrote an entry into every index
--    of the table. The reaper now walks the processing rows instead: there are only ever as many
--    of them as worker threads, and it checks each one's lease on the heap. Nothing a heartbeat
--    writes is in this index, and `status` (its predicate) changes on claim and end anyway.
DROP INDEX processed_images_lease_idx;
CREATE INDEX processed_images_processing_idx ON processed_images (id) WHERE status = 'processing';

-- 2. Storage parameters. `fillfactor` only affects pages written from now on (existing pages
--    fill up as rows are rewritten; `VACUUM FULL` would repack them all).
ALTER TABLE processed_images SET (
    -- A HOT update needs room on the row's own page. The blobs live out of line (TOAST), so a
    -- row is a few hundred bytes and a page holds 20-30 of them; 20 % free is room for a
    -- claimed row's heartbeat versions (pruned as they die) and for its completion, which then
    -- also stays on its page. The cost is 25 % more heap pages, which nothing scans whole: the
    -- list pages read 50 rows through an index, the stats read the counters below.
    fillfactor = 80,
    -- Every job leaves dead versions behind (claim, completion) in the heap and in the partial
    -- pending/processing indexes the claim and reaper walk. The default (vacuum once 20 % of
    -- the table is dead) waits for 200 000 dead rows at a million rows; 1 % + 1 000 keeps the
    -- queue's indexes short while a big table of finished rows stays untouched (vacuum skips
    -- all-visible pages, so frequent runs over a table of finished rows are cheap).
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    -- The status mix moves fast (a burst of uploads is all pending, then all completed), and
    -- the planner's per-status estimates pick the list and claim plans: re-analyze after 1 %
    -- of the rows changed rather than 10 %.
    autovacuum_analyze_scale_factor = 0.01,
    autovacuum_analyze_threshold = 1000,
    -- The TOAST table holds the images, i.e. nearly all of the disk. Deletes and retries
    -- (which drop the processed blob) leave dead chunks that are reused only after a vacuum;
    -- at the default 20 % a big table would carry gigabytes of dead images first.
    toast.autovacuum_vacuum_scale_factor = 0.05
);

-- 3. Status counters, kept exact by triggers, so that `/api/stats` reads a few dozen rows
--    whatever the size of the table.
--
-- Why sharded rows and not one counter row: a counter row is locked from the statement that
-- changes it until its transaction commits, so a single row would make every upload, claim and
-- completion in the whole system commit one after another. Instead there are 64 slots and each
-- statement adds its change to a slot no other open transaction holds (`FOR UPDATE SKIP LOCKED`,
-- starting from a slot picked by the backend's pid so that a connection keeps reusing its own).
-- Writers never wait for each other's counters unless 64 transactions are open at once, and two
-- transactions can never deadlock on them (SKIP LOCKED does not wait). The stats query sums the
-- 64 rows. A ledger of deltas (one row per change, folded periodically) was the alternative:
-- it never locks but doubles the rows written, and needs something to fold it.
--
-- Why per-statement: row triggers only add their change to a transaction-local setting
-- (`image_processor.count_delta`), and a statement trigger writes the sum once. Updating a
-- counter row once per row would write N versions of the same row in one transaction, each
-- update walking the versions before it (measured: 10 000 updates of one row in one
-- transaction 3 s, 20 000 10 s, 40 000 52 s), so a 1 000 000-row `INSERT ... SELECT` would take
-- hours.
-- The setting follows the transaction: a rolled-back statement or savepoint takes its part
-- of the sum back with it. (Statement triggers with transition tables were the other way to
-- sum per statement; they copy every changed row, images included, and cannot be limited to
-- status changes, so every heartbeat would pay for them.)
CREATE TABLE processed_images_counts (
    slot        INTEGER PRIMARY KEY,
    pending     BIGINT NOT NULL DEFAULT 0,
    processing  BIGINT NOT NULL DEFAULT 0,
    completed   BIGINT NOT NULL DEFAULT 0,
    failed      BIGINT NOT NULL DEFAULT 0
);
COMMENT ON TABLE processed_images_counts IS
    'rows of processed_images per status, spread over 64 slots (sum them); kept by trigger';
INSERT INTO processed_images_counts (slot) SELECT generate_series(0, 63);

-- Completions per second for "completed in the last minute": a ring of 64 one-second buckets
-- per slot, written by whoever holds that slot's counter row (so never contended) and read as
-- the sum of the buckets of the last 60 s. An index on `processed_at` would also do, but its
-- cost grows with throughput (120 000 entries a minute at 2 000 jobs/s); this stays 64 x 64 rows.
CREATE TABLE processed_images_completions (
    slot    INTEGER NOT NULL,
    tick    INTEGER NOT NULL,            -- the bucket's second, modulo 64
    second  TIMESTAMPTZ NOT NULL,        -- the second it holds; older than 60 s: stale
    n       BIGINT NOT NULL,
    PRIMARY KEY (slot, tick)
);
COMMENT ON TABLE processed_images_completions IS
    'status changes into completed per second and slot, a 64-second ring; kept by trigger';

-- Per row: add the change to the transaction's running sum
-- {pending, processing, completed, failed, completions}.
CREATE FUNCTION processed_images_count_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    statuses CONSTANT TEXT[] := ARRAY['pending', 'processing', 'completed', 'failed'];
    d BIGINT[] := coalesce(nullif(current_setting('image_processor.count_delta', true), ''),
                           '{0,0,0,0,0}')::BIGINT[];
BEGIN
    IF TG_OP <> 'INSERT' THEN
        d[array_position(statuses, OLD.status)] := d[array_position(statuses, OLD.status)] - 1;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        d[array_position(statuses, NEW.status)] := d[array_position(statuses, NEW.status)] + 1;
        -- Throughput counts work done here: rows a writer inserts already completed do not.
        IF TG_OP = 'UPDATE' AND NEW.status = 'completed' THEN
            d[5] := d[5] + 1;
        END IF;
    END IF;
    PERFORM set_config('image_processor.count_delta', d::TEXT, true);
    RETURN NULL;
END $$;

-- Per statement (after its row triggers): write the sum into a free slot and reset it.
CREATE FUNCTION processed_images_count_flush() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d BIGINT[] := nullif(current_setting('image_processor.count_delta', true), '')::BIGINT[];
    own CONSTANT INTEGER := pg_backend_pid() % 64;
    s INTEGER;
BEGIN
    IF d IS NULL OR d = '{0,0,0,0,0}' THEN
        RETURN NULL;  -- e.g. a claim that found nothing, or a heartbeat
    END IF;
    PERFORM set_config('image_processor.count_delta', '', true);
    -- The first slot, from our own onwards, that no other open transaction holds (one this
    -- transaction already holds counts as free). Under REPEATABLE READ, locking a row that
    -- another transaction changed after our snapshot is a serialization failure rather than a
    -- wait, so there only rows nobody touched since they were written (`xmax = 0`) qualify.
    -- (SERIALIZABLE writers can still conflict with each other through these rows.)
    SELECT slot INTO s FROM processed_images_counts
    WHERE xmax = '0'::xid OR current_setting('transaction_isolation') = 'read committed'
    ORDER BY (slot - own + 64) % 64 LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF s IS NULL THEN
        s := own;  -- all 64 held by open transactions: wait for ours
    END IF;
    UPDATE processed_images_counts
    SET pending = pending + d[1], processing = processing + d[2],
        completed = completed + d[3], failed = failed + d[4]
    WHERE slot = s;
    IF d[5] <> 0 THEN
        INSERT INTO processed_images_completions AS c (slot, tick, second, n)
        VALUES (s, (floor(extract(epoch FROM now()))::BIGINT % 64)::INTEGER,
                date_trunc('second', now()), d[5])
        ON CONFLICT (slot, tick) DO UPDATE SET
            -- the same second: add; a newer one: start the bucket again; an older one (a
            -- transaction that began over a minute ago): outside the window, drop it
            n = CASE WHEN c.second = excluded.second THEN c.n + excluded.n
                     WHEN c.second < excluded.second THEN excluded.n
                     ELSE c.n END,
            second = greatest(c.second, excluded.second);
    END IF;
    RETURN NULL;
END $$;

-- No column list and no WHEN on the statement triggers: a row trigger's change is only in
-- the sum once that row trigger has run, which is after a statement trigger's WHEN is
-- evaluated. The row trigger for updates runs only when the status changed (checked in C,
-- so heartbeats pay nothing there); it has no `OF status` either, so a status set by some
-- BEFORE trigger of a user's is counted too.
CREATE TRIGGER processed_images_count_insert
    AFTER INSERT ON processed_images
    FOR EACH ROW EXECUTE FUNCTION processed_images_count_row();
CREATE TRIGGER processed_images_count_update
    AFTER UPDATE ON processed_images
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION processed_images_count_row();
CREATE TRIGGER processed_images_count_delete
    AFTER DELETE ON processed_images
    FOR EACH ROW EXECUTE FUNCTION processed_images_count_row();
CREATE TRIGGER processed_images_count_flush
    AFTER INSERT OR UPDATE OR DELETE ON processed_images
    FOR EACH STATEMENT EXECUTE FUNCTION processed_images_count_flush();

-- TRUNCATE takes the table's exclusive lock, so no other writer is in flight: reset to zero.
CREATE FUNCTION processed_images_count_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE processed_images_counts SET pending = 0, processing = 0, completed = 0, failed = 0;
    DELETE FROM processed_images_completions;
    RETURN NULL;
END $$;
CREATE TRIGGER processed_images_count_truncate
    AFTER TRUNCATE ON processed_images
    FOR EACH STATEMENT EXECUTE FUNCTION processed_images_count_truncate();

-- Recounts from the table: for this migration, and for an operator after anything that
-- bypassed the triggers (`session_replication_role = replica`, a data-only restore with
-- `--disable-triggers`, `ALTER TABLE ... DISABLE TRIGGER`). The SHARE lock waits for the
-- writers in flight and holds off new ones until the caller commits, so the count is exact.
-- `SELECT processed_images_recount();` counts the whole table once (about a second per million
-- rows).
CREATE FUNCTION processed_images_recount() RETURNS void LANGUAGE sql AS $$
    LOCK TABLE processed_images IN SHARE MODE;
    UPDATE processed_images_counts SET pending = 0, processing = 0, completed = 0, failed = 0
    WHERE slot <> 0;
    UPDATE processed_images_counts SET
        pending = t.pending, processing = t.processing, completed = t.completed, failed = t.failed
    FROM (SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
                 count(*) FILTER (WHERE status = 'processing') AS processing,
                 count(*) FILTER (WHERE status = 'completed') AS completed,
                 count(*) FILTER (WHERE status = 'failed') AS failed
          FROM processed_images) t
    WHERE slot = 0;
$$;
-- The triggers above already hold off writers until this migration commits (CREATE TRIGGER
-- takes a lock that conflicts with them), so rows written before are counted here and rows
-- written after by the triggers.
SELECT processed_images_recount();
