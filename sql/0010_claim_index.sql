-- The claim walks this, in claim order: highest priority, then the row runnable longest. Rows
-- with a future run_after (scheduled, or backing off) are skipped by the walk's filter, so a
-- claim's cost grows with the scheduled rows of a higher priority than the runnable ones; the
-- pending index on run_after (0001) still finds the next one due.
--
-- CREATE INDEX takes a SHARE lock: readers go on, writers wait for the build (about a second
-- per million rows here: it reads the heap, not the image bytes). VALIDATE CONSTRAINT scans
-- under SHARE UPDATE EXCLUSIVE, which blocks neither.
CREATE INDEX processed_images_claim_idx ON processed_images (priority DESC, run_after)
    WHERE status = 'pending' AND lost_leases = 0;
ALTER TABLE processed_images VALIDATE CONSTRAINT processed_images_priority_range;
