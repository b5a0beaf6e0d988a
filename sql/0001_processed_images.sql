-- The original design's table, kept by name and columns so that a plain SQL INSERT stays a job
-- source, plus what the queue and the API need.
CREATE TABLE processed_images (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    original_data   BYTEA NOT NULL,
    processed_data  BYTEA,
    uploaded_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    processed_at    TIMESTAMPTZ,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'processing', 'completed', 'failed')),

    filename                TEXT,
    pipeline                JSONB,          -- NULL: the worker's DEFAULT_PIPELINE
    original_content_type   TEXT,           -- NULL until sniffed (rows inserted by SQL)
    original_bytes          BIGINT,         -- set by trigger, so lists never read the blob
    original_width          INTEGER,
    original_height         INTEGER,
    processed_content_type  TEXT,
    processed_bytes         BIGINT,
    processed_width         INTEGER,
    processed_height        INTEGER,
    thumbnail_data          BYTEA,
    thumbnail_content_type  TEXT,

    attempts          INTEGER NOT NULL DEFAULT 0,   -- claims so far; also the fencing token
    error             TEXT,
    claimed_by        TEXT,                         -- worker process holding the claim
    lease_expires_at  TIMESTAMPTZ,
    run_after         TIMESTAMPTZ NOT NULL DEFAULT now(),  -- backoff: not claimable before
    started_at        TIMESTAMPTZ
);

-- Images are already compressed: skip pglz and store the blobs out of line untouched, which
-- makes inserts and reads cheaper.
ALTER TABLE processed_images ALTER COLUMN original_data SET STORAGE EXTERNAL;
ALTER TABLE processed_images ALTER COLUMN processed_data SET STORAGE EXTERNAL;
ALTER TABLE processed_images ALTER COLUMN thumbnail_data SET STORAGE EXTERNAL;

-- The claim query walks this: pending rows in the order they became runnable.
CREATE INDEX processed_images_pending_idx ON processed_images (run_after) WHERE status = 'pending';
-- The lease reaper walks this.
CREATE INDEX processed_images_lease_idx ON processed_images (lease_expires_at) WHERE status = 'processing';
-- Keyset pagination, newest first, with and without a status filter.
CREATE INDEX processed_images_list_idx ON processed_images (uploaded_at DESC, id DESC);
CREATE INDEX processed_images_status_list_idx ON processed_images (status, uploaded_at DESC, id DESC);

-- Sizes are derived from the blobs, whoever wrote them (the API or a plain SQL INSERT).
CREATE FUNCTION processed_images_sizes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.original_bytes := octet_length(NEW.original_data);
    NEW.processed_bytes := octet_length(NEW.processed_data);
    RETURN NEW;
END $$;
CREATE TRIGGER processed_images_sizes
    BEFORE INSERT OR UPDATE OF original_data, processed_data ON processed_images
    FOR EACH ROW EXECUTE FUNCTION processed_images_sizes();

-- Wake-up for workers. NOTIFY is a hint, never the truth: workers also sweep on a timer.
-- One notification per statement with a constant payload: every NOTIFY takes a global lock at
-- commit, and identical notifications in one transaction are folded into one.
CREATE FUNCTION processed_images_wake_workers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF EXISTS (SELECT 1 FROM new_rows WHERE status = 'pending') THEN
            PERFORM pg_notify('image_jobs', '');
        END IF;
    ELSIF EXISTS (SELECT 1 FROM new_rows n JOIN old_rows o USING (id)
                  WHERE n.status = 'pending' AND o.status <> 'pending') THEN
        PERFORM pg_notify('image_jobs', '');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER processed_images_wake_on_insert
    AFTER INSERT ON processed_images REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION processed_images_wake_workers();
CREATE TRIGGER processed_images_wake_on_update
    AFTER UPDATE ON processed_images REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION processed_images_wake_workers();

-- Live events for API replicas (SSE, ?wait=): one small notification per status change.
CREATE FUNCTION processed_images_status_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('image_status', OLD.id::text || ':deleted');
    ELSE
        PERFORM pg_notify('image_status', NEW.id::text || ':' || NEW.status);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER processed_images_status_on_insert
    AFTER INSERT ON processed_images
    FOR EACH ROW EXECUTE FUNCTION processed_images_status_event();
CREATE TRIGGER processed_images_status_on_update
    AFTER UPDATE OF status ON processed_images
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION processed_images_status_event();
CREATE TRIGGER processed_images_status_on_delete
    AFTER DELETE ON processed_images
    FOR EACH ROW EXECUTE FUNCTION processed_images_status_event();
