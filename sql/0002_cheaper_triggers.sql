-- Cheaper triggers, measured with bench/pg_trigger_cost.py (server CPU for a 3.3 MB insert
-- 16.7 -> 11.0 ms; a 5 000-row INSERT ... SELECT 162 -> 139 ms):
-- * the sizes trigger copied the whole row (blob included) through PL/pgSQL on every insert;
--   the API and the worker now set the sizes themselves, and the trigger only runs for writers
--   that did not (a plain SQL INSERT);
-- * the wake-up triggers kept transition tables, i.e. a copy of every changed row.
DROP TRIGGER processed_images_sizes ON processed_images;
CREATE TRIGGER processed_images_sizes
    BEFORE INSERT OR UPDATE OF original_data, processed_data ON processed_images
    FOR EACH ROW
    WHEN (NEW.original_bytes IS DISTINCT FROM octet_length(NEW.original_data)
          OR NEW.processed_bytes IS DISTINCT FROM octet_length(NEW.processed_data))
    EXECUTE FUNCTION processed_images_sizes();

DROP TRIGGER processed_images_wake_on_insert ON processed_images;
DROP TRIGGER processed_images_wake_on_update ON processed_images;
CREATE OR REPLACE FUNCTION processed_images_wake_workers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Constant payload: identical notifications in one transaction are folded into one.
    PERFORM pg_notify('image_jobs', '');
    RETURN NULL;
END $$;
CREATE TRIGGER processed_images_wake_on_insert
    AFTER INSERT ON processed_images
    FOR EACH STATEMENT EXECUTE FUNCTION processed_images_wake_workers();
CREATE TRIGGER processed_images_wake_on_update
    AFTER UPDATE OF status ON processed_images
    FOR EACH ROW WHEN (NEW.status = 'pending' AND OLD.status IS DISTINCT FROM 'pending')
    EXECUTE FUNCTION processed_images_wake_workers();
