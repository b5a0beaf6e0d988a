-- Job control (issue 19): the `cancelled` status, and a per-minute history of completions and
-- failures for `/api/stats` (`history`: the last 60 minutes).
--
-- The first statement takes the table's ACCESS EXCLUSIVE lock, so every writer in flight has
-- finished and none starts until this migration commits: no statement ever runs half with the
-- old counter functions and half with the new ones below. Nothing here scans or rewrites the
-- table (the widened CHECK is added NOT VALID, and 0012 validates it under a weaker lock).

-- 1. `cancelled`: a pending or processing row a client cancelled. It is finished, like
--    `completed` and `failed` (retry puts it back to pending; retention deletes it).
ALTER TABLE processed_images DROP CONSTRAINT processed_images_status_check;
ALTER TABLE processed_images ADD CONSTRAINT processed_images_status_check
    CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')) NOT VALID;

ALTER TABLE processed_images_counts ADD COLUMN cancelled BIGINT NOT NULL DEFAULT 0;

-- 2. History: completions and failures per minute, the last hour. The same shape as the
--    per-second ring of 0008 (a ring of 64 buckets per counter slot, written only by whoever
--    holds that slot's counter row, so never contended), one bucket a minute. An index on
--    `processed_at` would answer it too, but costs every completion an index entry for ever;
--    this is 64 x 64 rows whatever the throughput. Like `completed_last_minute`, it counts
--    status changes made here (a worker's, the lease sweep's, a SQL writer's UPDATE): rows
--    inserted already finished are not work done.
CREATE TABLE processed_images_history (
    slot       INTEGER NOT NULL,
    tick       INTEGER NOT NULL,        -- the bucket's minute, modulo 64
    minute     TIMESTAMPTZ NOT NULL,    -- the minute it holds; older than an hour: stale
    completed  BIGINT NOT NULL,
    failed     BIGINT NOT NULL,
    PRIMARY KEY (slot, tick)
);
COMMENT ON TABLE processed_images_history IS
    'status changes into completed and failed per minute and slot, a 64-minute ring; kept by trigger';

-- Per row: the running sum is now
-- {pending, processing, completed, failed, cancelled, completions, failures}.
CREATE OR REPLACE FUNCTION processed_images_count_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    statuses CONSTANT TEXT[] := ARRAY['pending', 'processing', 'completed', 'failed', 'cancelled'];
    d BIGINT[] := coalesce(nullif(current_setting('image_processor.count_delta', true), ''),
                           '{0,0,0,0,0,0,0}')::BIGINT[];
BEGIN
    IF TG_OP <> 'INSERT' THEN
        d[array_position(statuses, OLD.status)] := d[array_position(statuses, OLD.status)] - 1;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        d[array_position(statuses, NEW.status)] := d[array_position(statuses, NEW.status)] + 1;
        -- Throughput counts work done here: rows a writer inserts already finished do not.
        IF TG_OP = 'UPDATE' AND NEW.status = 'completed' THEN
            d[6] := d[6] + 1;
        ELSIF TG_OP = 'UPDATE' AND NEW.status = 'failed' THEN
            d[7] := d[7] + 1;
        END IF;
    END IF;
    PERFORM set_config('image_processor.count_delta', d::TEXT, true);
    RETURN NULL;
END $$;

-- Per statement: as in 0008, plus the cancelled column and the minute ring.
CREATE OR REPLACE FUNCTION processed_images_count_flush() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d BIGINT[] := nullif(current_setting('image_processor.count_delta', true), '')::BIGINT[];
    own CONSTANT INTEGER := pg_backend_pid() % 64;
    s INTEGER;
BEGIN
    IF d IS NULL OR d = '{0,0,0,0,0,0,0}' THEN
        RETURN NULL;  -- e.g. a claim that found nothing, or a heartbeat
    END IF;
    PERFORM set_config('image_processor.count_delta', '', true);
    -- 0008 says why: the first slot from our own onwards that no other open transaction holds.
    SELECT slot INTO s FROM processed_images_counts
    WHERE xmax = '0'::xid OR current_setting('transaction_isolation') = 'read committed'
    ORDER BY (slot - own + 64) % 64 LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF s IS NULL THEN
        s := own;  -- all 64 held by open transactions: wait for ours
    END IF;
    UPDATE processed_images_counts
    SET pending = pending + d[1], processing = processing + d[2],
        completed = completed + d[3], failed = failed + d[4], cancelled = cancelled + d[5]
    WHERE slot = s;
    IF d[6] <> 0 THEN
        INSERT INTO processed_images_completions AS c (slot, tick, second, n)
        VALUES (s, (floor(extract(epoch FROM now()))::BIGINT % 64)::INTEGER,
                date_trunc('second', now()), d[6])
        ON CONFLICT (slot, tick) DO UPDATE SET
            n = CASE WHEN c.second = excluded.second THEN c.n + excluded.n
                     WHEN c.second < excluded.second THEN excluded.n
                     ELSE c.n END,
            second = greatest(c.second, excluded.second);
    END IF;
    IF d[6] <> 0 OR d[7] <> 0 THEN
        -- the same minute: add; a newer one: start the bucket again; an older one (a
        -- transaction that began over an hour ago): outside the window, drop it
        INSERT INTO processed_images_history AS h (slot, tick, minute, completed, failed)
        VALUES (s, (floor(extract(epoch FROM now()) / 60)::BIGINT % 64)::INTEGER,
                date_trunc('minute', now()), d[6], d[7])
        ON CONFLICT (slot, tick) DO UPDATE SET
            completed = CASE WHEN h.minute = excluded.minute THEN h.completed + excluded.completed
                             WHEN h.minute < excluded.minute THEN excluded.completed
                             ELSE h.completed END,
            failed = CASE WHEN h.minute = excluded.minute THEN h.failed + excluded.failed
                          WHEN h.minute < excluded.minute THEN excluded.failed
                          ELSE h.failed END,
            minute = greatest(h.minute, excluded.minute);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION processed_images_count_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE processed_images_counts
    SET pending = 0, processing = 0, completed = 0, failed = 0, cancelled = 0;
    DELETE FROM processed_images_completions;
    DELETE FROM processed_images_history;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION processed_images_recount() RETURNS void LANGUAGE sql AS $$
    LOCK TABLE processed_images IN SHARE MODE;
    UPDATE processed_images_counts
    SET pending = 0, processing = 0, completed = 0, failed = 0, cancelled = 0
    WHERE slot <> 0;
    UPDATE processed_images_counts SET
        pending = t.pending, processing = t.processing, completed = t.completed,
        failed = t.failed, cancelled = t.cancelled
    FROM (SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
                 count(*) FILTER (WHERE status = 'processing') AS processing,
                 count(*) FILTER (WHERE status = 'completed') AS completed,
                 count(*) FILTER (WHERE status = 'failed') AS failed,
                 count(*) FILTER (WHERE status = 'cancelled') AS cancelled
          FROM processed_images) t
    WHERE slot = 0;
$$;

-- 3. Cancelling a running job: the API's statement makes the row `cancelled` (so the worker's
--    fence refuses its result), then notifies `image_cancel` with the id, after its commit, so
--    the worker running it stops at its next safe point instead of finishing work nobody wants.
--    A missed notification costs only time: the next heartbeat finds the claim gone.
