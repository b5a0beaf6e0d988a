-- Job control: `priority` (higher is claimed first; among equals, the row runnable longest)
-- and `not_before` (a scheduled job: pending, but not claimed before then). Both are plain
-- columns, so a SQL INSERT can set them as the API does.
--
-- Kept short, because ALTER TABLE holds an ACCESS EXCLUSIVE lock (readers wait too) until this
-- migration commits: adding columns with constant defaults does not rewrite the table, and the
-- CHECK is added NOT VALID so it does not scan it (every existing row has the default 0; new
-- and updated rows are checked). 0010 validates it and builds the claim index under weaker
-- locks.
ALTER TABLE processed_images
    ADD COLUMN priority SMALLINT NOT NULL DEFAULT 0,
    ADD COLUMN not_before TIMESTAMPTZ;
ALTER TABLE processed_images ADD CONSTRAINT processed_images_priority_range
    CHECK (priority BETWEEN -100 AND 100) NOT VALID;

COMMENT ON COLUMN processed_images.priority IS
    '-100..100, default 0: higher is claimed first; among equals, oldest run_after first';
COMMENT ON COLUMN processed_images.not_before IS
    'not claimed before this time (run_after starts here; a retry waits for it again)';

-- A row inserted with `not_before` (by the API or plain SQL) starts runnable there, and a
-- pending row whose `not_before` a SQL writer changes follows it. BEFORE triggers with WHEN
-- clauses: other inserts and updates never enter PL/pgSQL.
CREATE FUNCTION processed_images_not_before() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.run_after := greatest(NEW.run_after, NEW.not_before);
    ELSE
        NEW.run_after := greatest(now(), NEW.not_before);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER processed_images_not_before
    BEFORE INSERT ON processed_images
    FOR EACH ROW WHEN (NEW.not_before IS NOT NULL)
    EXECUTE FUNCTION processed_images_not_before();
CREATE TRIGGER processed_images_not_before_changed
    BEFORE UPDATE OF not_before ON processed_images
    FOR EACH ROW WHEN (NEW.status = 'pending' AND NEW.not_before IS DISTINCT FROM OLD.not_before)
    EXECUTE FUNCTION processed_images_not_before();
