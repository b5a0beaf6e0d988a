//! Job control from clients: cancel one image, retry or delete many by a filter.
//!
//! A cancel is an ordinary status change: the row becomes `cancelled` at once (its counters,
//! SSE event and `?wait=` answer follow from the triggers), and a worker running it loses its
//! claim, so its fenced write-back matches nothing. [`notify_cancel`] then tells that worker
//! to stop early; if the notification is lost, its next heartbeat finds the claim gone.
//!
//! Bulk actions walk at most [`BULK_LIMIT`] rows per call, oldest upload first, skipping rows
//! another transaction holds (a claim in flight), so one call never holds thousands of row
//! locks for long and never waits on a worker.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::images::{record_columns, retry_set, retryable, ImageRecord};
use super::DbError;
use crate::states::JobStatus;

/// Most rows one bulk call changes (SPEC: 10 000); a caller repeats while it gets this many.
pub const BULK_LIMIT: i64 = 10_000;

/// The channel a cancel notifies, with the image id as payload; workers listen on it.
pub const CANCEL_CHANNEL: &str = "image_cancel";

pub const CANCEL_IMAGE: &str = concat!(
    "update processed_images set status = 'cancelled', processed_at = now(), \
     error = 'cancelled by a client request', error_code = 'cancelled', \
     claimed_by = null, lease_expires_at = null \
     where id = $1 and status in ('pending', 'processing') returning ",
    record_columns!()
);

/// Cancels a pending or processing image; `None` when it is neither (or does not exist).
pub async fn cancel_image(db: &impl GenericClient, id: Uuid) -> Result<Option<ImageRecord>, DbError> {
    let stmt = db.prepare_cached(CANCEL_IMAGE).await?;
    let row = db.query_opt(&stmt, &[&id]).await?;
    row.map(|r| ImageRecord::from_row(&r))
        .transpose()
        .map_err(DbError::from)
}

pub const NOTIFY_CANCEL: &str = "select pg_notify('image_cancel', $1)";

/// Tells the workers that `id` was cancelled (after the cancel committed): the one running
/// it stops at its next safe point.
pub async fn notify_cancel(db: &impl GenericClient, id: Uuid) -> Result<(), DbError> {
    let stmt = db.prepare_cached(NOTIFY_CANCEL).await?;
    db.execute(&stmt, &[&id.to_string()]).await?;
    Ok(())
}

/// Which rows a bulk action takes; every given part must match (at least one is given: the
/// HTTP layer checks).
#[derive(Debug, Default, Clone)]
pub struct BulkFilter {
    pub status: Option<JobStatus>,
    /// Uploaded strictly before this instant.
    pub before: Option<DateTime<Utc>>,
    /// Only these ids (at most [`BULK_LIMIT`]).
    pub ids: Option<Vec<Uuid>>,
}

/// The rows a bulk action takes: `$1` status, `$2` before, `$3` ids (each `NULL`: any), `$4`
/// the limit. A `NULL` part folds away in the custom plans PostgreSQL makes for the first
/// executions, so a status filter walks the status index.
macro_rules! bulk_picked {
    ($extra:expr) => {
        concat!(
            "with picked as (
    select id from processed_images
    where ($1::text is null or status = $1)
      and ($2::timestamptz is null or uploaded_at < $2)
      and ($3::uuid[] is null or id = any($3))",
            $extra,
            "
    order by uploaded_at
    limit $4
    for update skip locked
)"
        )
    };
}

pub const BULK_RETRY: &str = concat!(
    bulk_picked!(concat!("\n      and status in ", retryable!())),
    "\nupdate processed_images p ",
    retry_set!(),
    " from picked where p.id = picked.id"
);

pub const BULK_DELETE: &str = concat!(
    bulk_picked!(""),
    "\ndelete from processed_images p using picked where p.id = picked.id"
);

/// Puts up to [`BULK_LIMIT`] finished rows matching `filter` back in the queue.
pub async fn bulk_retry(db: &impl GenericClient, filter: &BulkFilter) -> Result<u64, DbError> {
    bulk(db, BULK_RETRY, filter).await
}

/// Deletes up to [`BULK_LIMIT`] rows matching `filter`, whatever their status (a worker
/// running one fails its fence and moves on).
pub async fn bulk_delete(db: &impl GenericClient, filter: &BulkFilter) -> Result<u64, DbError> {
    bulk(db, BULK_DELETE, filter).await
}

async fn bulk(db: &impl GenericClient, statement: &str, filter: &BulkFilter) -> Result<u64, DbError> {
    let stmt = db.prepare_cached(statement).await?;
    let status = filter.status.map(|s| s.as_str());
    Ok(db
        .execute(&stmt, &[&status, &filter.before, &filter.ids, &BULK_LIMIT])
        .await?)
}
