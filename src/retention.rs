//! `RETENTION_DAYS`: finished images older than that are deleted, so the table (and its TOAST
//! of image bytes) does not grow for ever.
//!
//! Every worker process runs this loop, but one pass at a time runs in the whole fleet: each
//! batch takes a transaction-level advisory lock with `pg_try_advisory_xact_lock`, and a
//! replica that does not get it skips the round (another one is deleting). Batches are small
//! ([`BATCH`] rows, their blobs freed with them) and each commits on its own, so no long
//! transaction holds locks or keeps vacuum from reclaiming the space.
//!
//! Which rows: `completed` and `failed` whose `processed_at` is older than the cut-off. They
//! are found through the list index on `uploaded_at` (a row is processed after it is uploaded,
//! so every expired row was uploaded before the cut-off too): no index on `processed_at` is
//! needed, which would cost every completion an index write.

use std::time::Duration;

use deadpool_postgres::Pool;
use tokio_util::sync::CancellationToken;

use crate::db;

/// Rows one batch deletes: each row's image bytes are TOAST chunks deleted with it (about
/// 1 250 for a 2.5 MB photo), so a batch stays well inside `db::CALL_TIMEOUT`.
pub const BATCH: i64 = 100;
/// How often a replica looks for expired rows.
pub const EVERY: Duration = Duration::from_secs(60);
/// The advisory lock key that makes one replica at a time delete ("ipretent" in ASCII).
pub const LOCK_KEY: i64 = 0x6970_7265_7465_6e74;

/// One batch: under the fleet-wide lock, delete up to `$2` finished rows processed before
/// `now() - $1 days`. Returns no row when another replica holds the lock.
pub const DELETE_EXPIRED: &str = "\
with lock as (select pg_try_advisory_xact_lock($3) as held),
expired as (
    select id from processed_images
    where (select held from lock)
      and uploaded_at < now() - make_interval(days => $1)
      and processed_at < now() - make_interval(days => $1)
      and status in ('completed', 'failed', 'cancelled')
    order by uploaded_at
    limit $2
    for update skip locked
), gone as (
    delete from processed_images p using expired where p.id = expired.id returning 1
)
select (select held from lock), (select count(*) from gone)::int8";

/// Runs until `cancel` fires: a pass at start, then every [`EVERY`].
pub async fn run(pool: Pool, days: u32, cancel: CancellationToken) -> anyhow::Result<()> {
    tracing::info!(
        days,
        "retention: deleting finished images older than RETENTION_DAYS"
    );
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        match pass(&pool, days, &cancel).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, days, "retention: deleted expired images"),
            Err(e) => tracing::warn!(error = %e, "retention pass failed; the next one tries again"),
        }
    }
}

/// Deletes batches until one comes back short, another replica holds the lock, or shutdown.
/// Returns how many rows this replica deleted.
pub async fn pass(pool: &Pool, days: u32, cancel: &CancellationToken) -> Result<u64, db::DbError> {
    let days = i32::try_from(days).unwrap_or(i32::MAX);
    let mut deleted = 0u64;
    while !cancel.is_cancelled() {
        let (held, n): (bool, i64) = db::bounded!(pool, |client| async {
            let stmt = client.prepare_cached(DELETE_EXPIRED).await?;
            let row = client.query_one(&stmt, &[&days, &BATCH, &LOCK_KEY]).await?;
            Ok::<_, db::DbError>((row.try_get(0)?, row.try_get(1)?))
        }
        .await)?;
        let n = u64::try_from(n).unwrap_or(0);
        deleted += n;
        crate::metrics::expired(n);
        if !held || n < BATCH as u64 {
            break;
        }
    }
    Ok(deleted)
}
