-- Presets and variants (SPEC "Variants, presets and signed delivery", issue 18).
--
-- A preset is a named pipeline; a variant is one image processed with one preset, and a job on
-- the same queue as the image itself: NOTIFY `image_jobs`, claimed FOR UPDATE SKIP LOCKED with
-- a lease, fenced on `(claimed_by, claim_seq)`, retried and timed out by the same rules.
--
-- The queue's data model: job state stays on the rows (here as on `processed_images`), and a
-- worker claims from both tables, taking turns. The other shape considered was one narrow job
-- table apart from the blobs (`jobs(kind, image_id, preset, status, lease...)`). Measured with
-- bench/pg_claim_paths.sh (claim + durable completion per job, pgbench, fsync on, this 2-core
-- shared machine; docs/scaling.md, "Queue data model", has the table): a job table made tiny
-- *image* jobs about 1.2x faster (its claim does not rewrite the wide image row), but nothing
-- for 100 KB originals, and variant jobs ran even (B/A 0.96-1.00); an upload with 3 variants
-- costs it 4 more rows, 26 % more WAL and 30 % more storage, and it was slower in 7 of 9 pairs
-- at 8 clients. A variant row is already narrow (about 120 bytes of heap; its output is TOASTed
-- out of line), so variants carry their own job columns, and images keep theirs.

CREATE TABLE image_presets (
    name        TEXT PRIMARY KEY CHECK (name ~ '^[a-z0-9_-]{1,64}$'),
    -- The same JSON as an upload's `pipeline` field; `"format": "auto"` negotiates the output
    -- from the request's Accept (AVIF, else WebP, else JPEG, or PNG for images with alpha).
    pipeline    JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
COMMENT ON TABLE image_presets IS 'named pipelines: PUT /api/presets/{name}, or plain SQL';

CREATE TABLE image_variants (
    -- The image; kept to existing images and deleted with them by the triggers at the end, not
    -- a foreign key: one would make `TRUNCATE processed_images` (a plain SQL user's reset, which
    -- the counters and the webhook outbox follow) fail.
    image_id          UUID NOT NULL,
    -- No foreign key to image_presets: a preset may be deleted while its variants are kept
    -- (completed ones go on being served), and a SQL INSERT naming an unknown preset is a job
    -- that fails saying so.
    preset            TEXT NOT NULL CHECK (preset ~ '^[a-z0-9_-]{1,64}$'),
    -- '' for the preset's own format. A `format: auto` preset has one row per format negotiated
    -- from Accept: 'avif', 'webp', and '' for everyone else (JPEG, or PNG for an image with
    -- alpha), which is also the row an upload's `variants` or a SQL INSERT queues.
    format            TEXT NOT NULL DEFAULT '' CHECK (format IN ('', 'avif', 'webp')),
    status            TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    priority          SMALLINT NOT NULL DEFAULT 0 CHECK (priority BETWEEN -100 AND 100),
    run_after         TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts          INTEGER NOT NULL DEFAULT 0,
    claim_seq         BIGINT NOT NULL DEFAULT 0,
    claimed_by        TEXT,
    lease_expires_at  TIMESTAMPTZ,
    lost_leases       INTEGER NOT NULL DEFAULT 0,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at        TIMESTAMPTZ,
    processed_at      TIMESTAMPTZ,
    error             TEXT,
    error_code        TEXT,
    data              BYTEA,
    content_type      TEXT,
    bytes             BIGINT,
    width             INTEGER,
    height            INTEGER,
    PRIMARY KEY (image_id, preset, format)
);
COMMENT ON TABLE image_variants IS
    'one image processed with one preset; INSERT (image_id, preset) queues it like an upload';

-- The claim walks this (the images' claim index, sql/0010, has the same shape).
CREATE INDEX image_variants_claim_idx ON image_variants (priority DESC, run_after)
    WHERE status = 'pending';
-- The lease sweep and the preset-deleted trigger find the few unfinished rows here.
CREATE INDEX image_variants_unfinished_idx ON image_variants (preset)
    WHERE status IN ('pending', 'processing');

-- Wake the workers, as the images' triggers do (sql/0002, sql/0003), on a channel of their own
-- (`variant_jobs`): a worker asks image_variants only after one, so a queue of images alone
-- costs no second claim statement per job. The API's connections notify after their commit.
CREATE FUNCTION image_variants_wake_workers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Constant payload: identical notifications in one transaction are folded into one.
    PERFORM pg_notify('variant_jobs', '');
    RETURN NULL;
END $$;
CREATE TRIGGER image_variants_wake_on_insert
    AFTER INSERT ON image_variants
    FOR EACH STATEMENT
    WHEN (current_setting('image_processor.notify_after_commit', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION image_variants_wake_workers();
CREATE TRIGGER image_variants_wake_on_update
    AFTER UPDATE OF status ON image_variants
    FOR EACH ROW WHEN (NEW.status = 'pending' AND OLD.status IS DISTINCT FROM 'pending')
    EXECUTE FUNCTION image_variants_wake_workers();

-- Live events on the images' channel: '<image id>:<status>:<preset>:<format>' (a preset name
-- has no ':'), which the API sends to SSE clients as `event: variant`.
CREATE FUNCTION image_variants_status_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('image_status',
        NEW.image_id::text || ':' || NEW.status || ':' || NEW.preset || ':' || NEW.format);
    RETURN NULL;
END $$;
CREATE TRIGGER image_variants_status_on_insert
    AFTER INSERT ON image_variants
    FOR EACH ROW
    WHEN (current_setting('image_processor.notify_after_commit', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION image_variants_status_event();
-- The worker's completions and failures notify after their durable commit (sql/0007).
CREATE TRIGGER image_variants_status_on_update
    AFTER UPDATE OF status ON image_variants
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          AND current_setting('image_processor.status_notify_after_commit', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION image_variants_status_event();

-- Retry and cancel of an image cover its variants, whoever changes the image's status (the
-- API, a bulk action, plain SQL). A retry makes every variant again (the original may have
-- been replaced by a retry's new pipeline run, and a preset may have changed); a cancel ends
-- the unfinished ones, and a worker running one finds its claim gone at its next heartbeat.
CREATE FUNCTION processed_images_cascade_to_variants() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'pending' THEN
        UPDATE image_variants SET status = 'pending', attempts = 0, lost_leases = 0,
            error = NULL, error_code = NULL, run_after = NEW.run_after, priority = NEW.priority,
            claimed_by = NULL, lease_expires_at = NULL, started_at = NULL, processed_at = NULL,
            data = NULL, content_type = NULL, bytes = NULL, width = NULL, height = NULL
        WHERE image_id = NEW.id AND status IN ('completed', 'failed', 'cancelled');
    ELSIF NEW.status = 'cancelled' THEN
        UPDATE image_variants SET status = 'cancelled', processed_at = now(),
            error = 'the image was cancelled', error_code = 'cancelled',
            claimed_by = NULL, lease_expires_at = NULL
        WHERE image_id = NEW.id AND status IN ('pending', 'processing');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER processed_images_variants_on_status
    AFTER UPDATE OF status ON processed_images
    FOR EACH ROW
    WHEN ((NEW.status = 'pending' AND OLD.status IN ('completed', 'failed', 'cancelled'))
          OR (NEW.status = 'cancelled' AND OLD.status IS DISTINCT FROM 'cancelled'))
    EXECUTE FUNCTION processed_images_cascade_to_variants();

-- A preset deleted while variants of it wait or run ends them `failed` with the reason;
-- completed ones stay (their signed URLs were promised as immutable).
CREATE FUNCTION image_presets_fail_unfinished() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE image_variants SET status = 'failed', processed_at = now(),
        error = 'the preset "' || OLD.name || '" was deleted before this variant was made',
        error_code = 'preset_deleted', claimed_by = NULL, lease_expires_at = NULL
    WHERE preset = OLD.name AND status IN ('pending', 'processing');
    RETURN NULL;
END $$;
CREATE TRIGGER image_presets_on_delete
    AFTER DELETE ON image_presets
    FOR EACH ROW EXECUTE FUNCTION image_presets_fail_unfinished();

-- What a foreign key would do, without refusing TRUNCATE: an insert must name an existing image
-- (locked FOR KEY SHARE until the insert commits, as a foreign key's check does, so a concurrent
-- delete waits for it and then takes the variant with it) ...
CREATE FUNCTION image_variants_check_image() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM processed_images WHERE id = NEW.image_id FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'image_variants: no image with id %', NEW.image_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER image_variants_image_exists
    BEFORE INSERT ON image_variants
    FOR EACH ROW EXECUTE FUNCTION image_variants_check_image();

-- ... and a deleted image takes its variants with it; a TRUNCATE of the images empties them.
CREATE FUNCTION processed_images_delete_variants() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE image_variants;
    ELSE
        DELETE FROM image_variants WHERE image_id = OLD.id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER processed_images_variants_on_delete
    AFTER DELETE ON processed_images
    FOR EACH ROW EXECUTE FUNCTION processed_images_delete_variants();
CREATE TRIGGER processed_images_variants_on_truncate
    AFTER TRUNCATE ON processed_images
    FOR EACH STATEMENT EXECUTE FUNCTION processed_images_delete_variants();
