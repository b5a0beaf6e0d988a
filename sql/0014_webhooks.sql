-- Webhooks (SPEC "Webhooks", issue 19) from a transactional outbox: the status change into
-- `completed` or `failed` and the event row commit together (a trigger writes the row in the
-- status change's own transaction), and the worker processes deliver from the table, claiming
-- rows with FOR UPDATE SKIP LOCKED, leases and fencing as they claim jobs. An event can never
-- be lost between "the image completed" and "someone will tell the receiver", and a delivery
-- survives restarts of every process.
--
-- (0011 and 0012 are left to the job-control migrations developed alongside this one.)

-- The upload's `callback_url` (checked by the API: http(s), a host, at most 2048 bytes; the
-- CHECK keeps SQL writers to the same length). NOT VALID: the column is new, so every existing
-- row is NULL and there is nothing to scan under the ACCESS EXCLUSIVE lock.
ALTER TABLE processed_images ADD COLUMN callback_url TEXT;
ALTER TABLE processed_images ADD CONSTRAINT processed_images_callback_url_length
    CHECK (octet_length(callback_url) <= 2048) NOT VALID;
COMMENT ON COLUMN processed_images.callback_url IS
    'POSTed a signed event when the image completes or fails (besides WEBHOOK_URL)';

-- The outbox: one row per event and destination. `webhook_id` is the Standard Webhooks
-- `webhook-id`, fixed when the event is made, so every retry carries the same one and a
-- receiver can drop duplicates (delivery is at least once). `image` is the image's metadata
-- as it was in the transaction that finished it, so a retry days later still sends what
-- happened then, whatever became of the row since (a retry, a new status).
CREATE TABLE webhook_deliveries (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- event order
    webhook_id        TEXT NOT NULL UNIQUE
                      DEFAULT 'msg_' || replace(gen_random_uuid()::text, '-', ''),
    -- No foreign key: one would make `TRUNCATE processed_images` (a plain SQL user's reset)
    -- fail. The triggers at the end delete an image's events with it instead.
    image_id          UUID NOT NULL,
    event             TEXT NOT NULL CHECK (event IN ('image.completed', 'image.failed')),
    url               TEXT NOT NULL,
    image             JSONB NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- pending: waiting (until next_attempt_at); delivering: claimed; delivered / failed: done
    -- (failed: WEBHOOK_MAX_ATTEMPTS spent, or a destination refused outright).
    state             TEXT NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending', 'delivering', 'delivered', 'failed')),
    attempts          INTEGER NOT NULL DEFAULT 0,          -- claims so far (the retry budget)
    next_attempt_at   TIMESTAMPTZ NOT NULL DEFAULT now(),  -- backoff: not claimed before
    claimed_by        TEXT,
    claim_seq         BIGINT NOT NULL DEFAULT 0,           -- the fencing token, as for jobs
    lease_expires_at  TIMESTAMPTZ,
    finished_at       TIMESTAMPTZ
);
COMMENT ON TABLE webhook_deliveries IS
    'webhook outbox: one event per row, written by trigger with the status change; see sql/0013';

-- The claim walks the due rows; the lease sweep walks the claimed ones (a handful: at most the
-- delivery slots of every worker). Finished rows are in neither index.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_delivering_idx ON webhook_deliveries (lease_expires_at)
    WHERE state = 'delivering';
-- The image's events in order: the per-image ordering check of the claim, the deliveries
-- route, and deleting an image's events with it.
CREATE INDEX webhook_deliveries_image_idx ON webhook_deliveries (image_id, id);

-- Every attempt, for `GET /api/images/{id}/deliveries`: an operator's first question about a
-- webhook is "what did the receiver answer, and when".
CREATE TABLE webhook_attempts (
    delivery_id  BIGINT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt      INTEGER NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    duration_ms  INTEGER NOT NULL,
    status_code  INTEGER,            -- NULL: no HTTP answer (refused, timeout, connection error)
    error        TEXT,
    outcome      TEXT NOT NULL CHECK (outcome IN ('delivered', 'retried', 'failed', 'refused')),
    PRIMARY KEY (delivery_id, attempt)
);

-- Who learns about WEBHOOK_URL, and how: it is process configuration, so the process tells the
-- database per connection. Worker connections (the only ones that finish jobs: completions,
-- failures and the lease sweep) carry `-c image_processor.webhook_url=<url>` when the setting
-- is on. The trigger then writes an event for a row with a `callback_url`, or on a connection
-- with the setting, and the URL goes into the event: the row says exactly where it goes, the
-- deliveries route shows it, and changing WEBHOOK_URL later does not redirect old events.
-- A plain SQL writer that wants the global URL too can `SET image_processor.webhook_url`.
-- The alternatives cost the hot path: an event for every finished row whether anyone listens or
-- not (an INSERT per job at thousands of jobs/s), or a settings table read by the trigger
-- (PL/pgSQL entered for every finished job). With neither a callback nor the setting, the WHEN
-- below is false, evaluated in C, and PL/pgSQL is never entered. Measured with
-- bench/pg_completion_triggers.sh (status flips, every other one into `completed`, 4 clients, a
-- shared 2-core machine, asynchronous commits to leave the flush out): trigger disabled
-- 3657-4384/s, enabled but idle 3716-4160/s (within the noise), every completion writing an
-- event 3156-3458/s (14-21 % fewer flips). With durable commits the flush dominates.
--
-- No NOTIFY here: the worker sends `image_status` '<id>:<status>' after the commit of every
-- completion and failure (sql/0007), and other writers' status changes notify inside their
-- transaction (sql/0001); the delivery loop listens on that. A NOTIFY in this trigger would put
-- the commit of every finished job with a webhook back under PostgreSQL's notify lock.
CREATE FUNCTION processed_images_webhook_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    -- The columns the API's image object is made of (db::images::record_columns), never the
    -- blobs: to_jsonb(NEW) would detoast and hex-encode every image of the row.
    snapshot CONSTANT JSONB := jsonb_build_object(
        'id', NEW.id, 'status', NEW.status, 'filename', NEW.filename, 'error', NEW.error,
        'error_code', NEW.error_code, 'attempts', NEW.attempts, 'uploaded_at', NEW.uploaded_at,
        'started_at', NEW.started_at, 'processed_at', NEW.processed_at,
        'pipeline', NEW.pipeline, 'original_content_type', NEW.original_content_type,
        'original_bytes', NEW.original_bytes, 'original_width', NEW.original_width,
        'original_height', NEW.original_height,
        'processed_content_type', NEW.processed_content_type,
        'processed_bytes', NEW.processed_bytes, 'processed_width', NEW.processed_width,
        'processed_height', NEW.processed_height, 'priority', NEW.priority,
        'not_before', NEW.not_before, 'callback_url', NEW.callback_url,
        'original_frames', NEW.original_frames, 'processed_frames', NEW.processed_frames,
        'sha256', NEW.sha256, 'blurhash', NEW.blurhash, 'dominant_color', NEW.dominant_color,
        'exif', NEW.exif);
BEGIN
    -- The callback and the global URL each get the event (once when they are the same URL).
    INSERT INTO webhook_deliveries (image_id, event, url, image)
    SELECT NEW.id, 'image.' || NEW.status, u, snapshot
    FROM (SELECT DISTINCT u FROM unnest(ARRAY[
              NEW.callback_url,
              nullif(current_setting('image_processor.webhook_url', true), '')]) AS u
          WHERE u IS NOT NULL) urls;
    RETURN NULL;
END $$;

-- No `OF status`: a status set by some BEFORE trigger of a user's counts too (as in sql/0008).
-- A row inserted already finished (by SQL) made no change of status, so no event.
CREATE TRIGGER processed_images_webhook_event
    AFTER UPDATE ON processed_images
    FOR EACH ROW
    WHEN (NEW.status IN ('completed', 'failed')
          AND OLD.status IS DISTINCT FROM NEW.status
          AND (NEW.callback_url IS NOT NULL
               OR current_setting('image_processor.webhook_url', true) <> ''))
    EXECUTE FUNCTION processed_images_webhook_event();

-- An image's events go with it when it is deleted (by the API, retention or SQL), delivered or
-- not: the outbox never outgrows the images, and nobody is told about an image that is gone
-- (a delivery in flight then records nothing: its fenced write finds no row). One index probe
-- per deleted row; TRUNCATE empties the outbox as well.
CREATE FUNCTION processed_images_webhook_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE webhook_attempts, webhook_deliveries;
    ELSE
        DELETE FROM webhook_deliveries WHERE image_id = OLD.id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER processed_images_webhook_forget
    AFTER DELETE ON processed_images
    FOR EACH ROW EXECUTE FUNCTION processed_images_webhook_forget();
CREATE TRIGGER processed_images_webhook_forget_all
    AFTER TRUNCATE ON processed_images
    FOR EACH STATEMENT EXECUTE FUNCTION processed_images_webhook_forget();
