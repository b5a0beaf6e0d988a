-- The worker's completions and failures send their status notification after their commit.
--
-- Why: those statements commit durably (synchronous_commit on, so a status a client has seen
-- survives a database crash), and a transaction that NOTIFYs holds a database-wide lock from
-- just before its commit until its commit record is flushed: every finished job waited for the
-- flush of the one before it, with no group commit. The statements now set
-- `image_processor.status_notify_after_commit` for their own transaction (set_config(..., true),
-- the same way they switch synchronous_commit on), the trigger stays quiet for them, and the
-- worker sends `image_status` '<id>:<status>' in a statement of its own right after the commit;
-- that statement writes no WAL, so it holds the lock for microseconds (the uploads' way,
-- sql/0003). If the worker dies between the two, SSE clients and `?wait=` long-polls miss that
-- one event: `?wait=` answers with the row as it is when its wait ends, and the UI refetches.
-- Every other status change (claims, releases, the sweep, SQL writers) is notified inside its
-- transaction as before.
DROP TRIGGER processed_images_status_on_update ON processed_images;
CREATE TRIGGER processed_images_status_on_update
    AFTER UPDATE OF status ON processed_images
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          AND current_setting('image_processor.status_notify_after_commit', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION processed_images_status_event();
