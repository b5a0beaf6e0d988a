//! What `/api/stats` and `/metrics` read: the trigger-kept counters, the per-minute history and
//! the oldest runnable row's wait. None of it counts the table (`sql/0008_table_health.sql`,
//! `sql/0011_cancelled_and_history.sql`).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use super::DbError;
use crate::states::JobStatus;

/// How long the longest-waiting runnable pending row has waited, in seconds (0 when none):
/// the first entry of the pending index (`run_after`), so one index probe at any table size.
/// A scheduled row counts from its `not_before`, a backed-off one from the end of its backoff.
macro_rules! oldest_pending_seconds {
    () => {
        "(select coalesce(extract(epoch from now() - min(run_after)), 0)::float8 \
          from processed_images where status = 'pending' and run_after <= now())"
    };
}
pub(crate) use oldest_pending_seconds;

/// Sums the trigger-kept counters (`sql/0008_table_health.sql`): 64 counter rows and at most
/// 64 x 64 completion buckets, never the table itself; and the oldest pending row's wait.
pub const STATS: &str = concat!(
    "\
select coalesce(sum(pending), 0)::int8, coalesce(sum(processing), 0)::int8,
       coalesce(sum(completed), 0)::int8, coalesce(sum(failed), 0)::int8,
       coalesce(sum(cancelled), 0)::int8,
       (select coalesce(sum(n), 0)::int8 from processed_images_completions
        where second >= date_trunc('second', now()) - interval '59 seconds'),
       ",
    oldest_pending_seconds!(),
    "
from processed_images_counts"
);

/// What `/api/stats` reads in one statement.
pub struct StatsRow {
    pub counts: Vec<(JobStatus, i64)>,
    /// Completions in the last minute.
    pub recent: i64,
    pub oldest_pending_seconds: f64,
}

/// Rows per status, and completions in the last minute (to the second: the current second and
/// the 59 before it; status changes into `completed`, whether or not the row is still there).
pub async fn stats(db: &impl GenericClient) -> Result<StatsRow, DbError> {
    let stmt = db.prepare_cached(STATS).await?;
    let row = db.query_one(&stmt, &[]).await?;
    let counts = vec![
        (JobStatus::Pending, row.try_get(0)?),
        (JobStatus::Processing, row.try_get(1)?),
        (JobStatus::Completed, row.try_get(2)?),
        (JobStatus::Failed, row.try_get(3)?),
        (JobStatus::Cancelled, row.try_get(4)?),
    ];
    Ok(StatsRow {
        counts,
        recent: row.try_get(5)?,
        oldest_pending_seconds: row.try_get(6)?,
    })
}

/// The last 60 minutes from the per-minute ring (`sql/0011_cancelled_and_history.sql`),
/// oldest first, every minute present: `(minute, completed, failed)`.
pub const STATS_HISTORY: &str = "\
select m.minute, coalesce(sum(h.completed), 0)::int8, coalesce(sum(h.failed), 0)::int8
from generate_series(date_trunc('minute', now()) - interval '59 minutes',
                     date_trunc('minute', now()), interval '1 minute') m(minute)
left join processed_images_history h on h.minute = m.minute
group by m.minute
order by m.minute";

/// Completions and failures per minute, the last hour.
pub async fn stats_history(db: &impl GenericClient) -> Result<Vec<(DateTime<Utc>, i64, i64)>, DbError> {
    let stmt = db.prepare_cached(STATS_HISTORY).await?;
    db.query(&stmt, &[])
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(DbError::from)
}
