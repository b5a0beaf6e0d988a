-- Checks the existing rows against 0011's widened status constraint. VALIDATE CONSTRAINT scans
-- the table under SHARE UPDATE EXCLUSIVE, which blocks neither readers nor writers, so it runs
-- in a migration of its own rather than under 0011's exclusive lock. Every row passes (the new
-- list holds the old one); validating only lets the planner and pg_dump rely on it.
ALTER TABLE processed_images VALIDATE CONSTRAINT processed_images_status_check;
