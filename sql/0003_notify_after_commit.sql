-- Uploads through the API send their notifications after the commit, not inside it.
--
-- Why: a transaction that NOTIFYs holds one database-wide lock from just before its commit until
-- its commit record is flushed, so with fsync on, concurrent uploads were committed one WAL
-- flush at a time instead of sharing flushes (group commit). Measured on the bench's 100 KB
-- ingest with fsync on: 290-1100 uploads/s depending on the disk's flush latency.
--
-- The API's connections set `image_processor.notify_after_commit=on` (a connection option);
-- for them the two insert triggers stay quiet and the API sends the same notifications
-- (`image_jobs` and one `image_status` per row) in a statement of its own right after the
-- commit. That statement writes no WAL, so it holds the lock for microseconds. Every other
-- writer -- psql, scripts, an older API -- is notified inside its transaction as before. If the
-- API dies between its commit and the notification, the workers' timer sweep finds the row.
DROP TRIGGER processed_images_wake_on_insert ON processed_images;
CREATE TRIGGER processed_images_wake_on_insert
    AFTER INSERT ON processed_images
    FOR EACH STATEMENT
    WHEN (current_setting('image_processor.notify_after_commit', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION processed_images_wake_workers();

DROP TRIGGER processed_images_status_on_insert ON processed_images;
CREATE TRIGGER processed_images_status_on_insert
    AFTER INSERT ON processed_images
    FOR EACH ROW
    WHEN (current_setting('image_processor.notify_after_commit', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION processed_images_status_event();
