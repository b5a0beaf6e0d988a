-- A fencing token that never repeats. Writes after a claim were fenced on
-- `(claimed_by, attempts)`, but `attempts` is the retry budget: a graceful release gives the
-- attempt back (attempts - 1) and a retry resets it to 0, so after release + re-claim (or
-- retry + re-claim) by the same worker process a stale claim carried the same token as the
-- live one and could complete, fail or renew the row under it.
--
-- `claim_seq` only grows: every claim takes the next number, and every post-claim statement is
-- fenced on it (src/db/jobs.rs). Nothing ever decrements or resets it. Adding a column with a
-- constant default does not rewrite the table.
ALTER TABLE processed_images ADD COLUMN claim_seq BIGINT NOT NULL DEFAULT 0;
COMMENT ON COLUMN processed_images.claim_seq IS
    'claims so far, never reset: the fencing token of the current claim (attempts is the retry budget)';
