-- Job control: `priority` (higher is claimed first; among equals, the row runnable longest)
-- and `not_before` (a scheduled job: pending, but not claimed before then). Both are plain
-- columns, so a SQL INSERT can set them as the API does.
--
-- Adding columns with constant defaults does not rewrite the table. The index build below
-- reads the whole heap once (about a second per million rows here) while holding off writers;
-- it is partial, so it stays as small as the queue.
ALTER TABLE processed_images
    ADD COLUMN priority SMALLINT NOT NULL DEFAULT 0
        CONSTRAINT processed_images_priority_range CHECK (priority BETWEEN -100 AND 100),
    ADD COLUMN not_before TIMESTAMPTZ;

COMMENT ON COLUMN processed_images.priority IS
    '-100..100, default 0: higher is claimed first; among equals, oldest run_after first';
COMMENT ON COLUMN processed_images.not_before IS
    'not claimed before this time (run_after starts here; a retry waits for it again)';

-- The claim walks this, in claim order: highest priority, then the row runnable longest.
-- Rows with a future run_after are skipped by the walk's filter; `processed_images_pending_idx`
-- (run_after) still finds the next one due.
CREATE INDEX processed_images_claim_idx ON processed_images (priority DESC, run_after)
    WHERE status = 'pending' AND lost_leases = 0;

-- A row inserted with `not_before` (by the API or plain SQL) starts runnable there. A BEFORE
-- trigger with a WHEN clause: rows without it never enter PL/pgSQL.
CREATE FUNCTION processed_images_not_before() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.run_after := greatest(NEW.run_after, NEW.not_before);
    RETURN NEW;
END $$;
CREATE TRIGGER processed_images_not_before
    BEFORE INSERT ON processed_images
    FOR EACH ROW WHEN (NEW.not_before IS NOT NULL)
    EXECUTE FUNCTION processed_images_not_before();
