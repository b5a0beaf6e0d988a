-- Claims of this row that ended with the lease running out: the worker vanished mid-job
-- (SIGKILL, the OOM killer, a crash, a partition). Such a row is claimed on its own next time,
-- by a worker with nothing else in flight, so that if the job itself is what kills processes,
-- it alone is charged for it, not the jobs that happened to share its process. A first loss is
-- not charged to anyone (src/db/jobs.rs, REAP_EXPIRED).
ALTER TABLE processed_images ADD COLUMN lost_leases INTEGER NOT NULL DEFAULT 0;

-- Runnable rows that lost a lease; workers look for one a few times a second, and it is
-- usually empty.
CREATE INDEX processed_images_lost_idx ON processed_images (run_after)
    WHERE status = 'pending' AND lost_leases > 0;
