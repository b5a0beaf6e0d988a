//! The webhook outbox's statements (`sql/0014_webhooks.sql`): claim due deliveries, record an
//! attempt, take back deliveries whose worker vanished, and list an image's deliveries.
//!
//! The same shape as the job queue (`jobs`): a claim sets `claimed_by`, a lease and a new
//! `claim_seq`; every write after it is fenced on `(claimed_by, claim_seq)`, so a worker whose
//! lease ran out (and whose delivery was handed to another) records nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::DbError;

/// A claimed delivery: everything needed to send it, and its fencing token.
#[derive(Debug)]
pub struct Delivery {
    pub id: i64,
    /// The Standard Webhooks `webhook-id`: the same on every attempt.
    pub webhook_id: String,
    pub image_id: Uuid,
    /// `image.completed` or `image.failed`.
    pub event: String,
    pub url: String,
    /// The image's metadata as it was when the event was made (see the migration).
    pub image: serde_json::Value,
    /// This attempt's number, from 1.
    pub attempt: i32,
    /// The fencing token: this claim's `claim_seq`.
    pub claim: i64,
    pub created_at: DateTime<Utc>,
}

/// Due deliveries, earliest first, at most one per (image, URL) and only the oldest unfinished
/// one of each: a later event of an image is not sent to a receiver before the earlier one was
/// delivered or given up (it stays pending meanwhile). The earlier row is `pending` or
/// `delivering` until its outcome commits, so no claimer can see the later one as first.
/// `$1` worker, `$2` limit, `$3` lease seconds.
pub const CLAIM_DELIVERIES: &str = "\
with picked as (
    select d.id from webhook_deliveries d
    where d.state = 'pending' and d.next_attempt_at <= now()
      and not exists (select 1 from webhook_deliveries e
                      where e.image_id = d.image_id and e.url = d.url and e.id < d.id
                        and e.state in ('pending', 'delivering'))
    order by d.next_attempt_at, d.id
    limit $2
    for update skip locked
)
update webhook_deliveries d
set state = 'delivering', claimed_by = $1, claim_seq = d.claim_seq + 1, attempts = d.attempts + 1,
    lease_expires_at = now() + make_interval(secs => $3)
from picked where d.id = picked.id
returning d.id, d.webhook_id, d.image_id, d.event, d.url, d.image, d.attempts, d.claim_seq,
    d.created_at";

/// Claims up to `limit` due deliveries for `worker`, each leased for `lease`.
pub async fn claim_deliveries(
    db: &impl GenericClient,
    worker: &str,
    limit: i64,
    lease: Duration,
) -> Result<Vec<Delivery>, DbError> {
    let stmt = db.prepare_cached(CLAIM_DELIVERIES).await?;
    let rows = db.query(&stmt, &[&worker, &limit, &lease.as_secs_f64()]).await?;
    rows.iter()
        .map(|r| {
            Ok(Delivery {
                id: r.try_get(0)?,
                webhook_id: r.try_get(1)?,
                image_id: r.try_get(2)?,
                event: r.try_get(3)?,
                url: r.try_get(4)?,
                image: r.try_get(5)?,
                attempt: r.try_get(6)?,
                claim: r.try_get(7)?,
                created_at: r.try_get(8)?,
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(DbError::from)
}

/// What one attempt ended in, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A 2xx answer: done.
    Delivered,
    /// Anything else, with attempts left: tried again after a backoff.
    Retried,
    /// Anything else, and that was the last attempt.
    Failed,
    /// The destination is not allowed (private address, bad URL): given up at once.
    Refused,
}

impl AttemptOutcome {
    /// The word stored in `webhook_attempts.outcome` and used as the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Retried => "retried",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Refused => "refused",
        }
    }

    /// The delivery's state after this outcome.
    fn state(self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Retried => "pending",
            AttemptOutcome::Failed | AttemptOutcome::Refused => "failed",
        }
    }
}

/// One attempt's record.
#[derive(Debug)]
pub struct Attempt<'a> {
    pub outcome: AttemptOutcome,
    pub at: DateTime<Utc>,
    pub duration: Duration,
    pub status_code: Option<i32>,
    pub error: Option<&'a str>,
    /// With [`AttemptOutcome::Retried`]: when to try again.
    pub retry_in: Duration,
}

/// Ends the claim with the attempt's outcome and logs the attempt, in one statement, fenced.
/// `$4` new state, `$5` seconds to the next attempt, `$6`.. the attempt.
pub const RECORD_ATTEMPT: &str = "\
with d as (
    update webhook_deliveries
    set state = $4::text, next_attempt_at = now() + make_interval(secs => $5),
        claimed_by = null, lease_expires_at = null,
        finished_at = case when $4::text in ('delivered', 'failed') then now() end
    where id = $1 and claimed_by = $2 and claim_seq = $3 and state = 'delivering'
    returning id, attempts
)
insert into webhook_attempts (delivery_id, attempt, at, duration_ms, status_code, error, outcome)
select id, attempts, $6, $7, $8, $9, $10 from d";

/// Records `attempt` for the claim `(delivery, worker, claim)`; `false` when fenced off (the
/// lease ran out and the delivery was taken back, or the image was deleted).
pub async fn record_attempt(
    db: &impl GenericClient,
    delivery: &Delivery,
    worker: &str,
    attempt: &Attempt<'_>,
) -> Result<bool, DbError> {
    let stmt = db.prepare_cached(RECORD_ATTEMPT).await?;
    let duration_ms = i32::try_from(attempt.duration.as_millis()).unwrap_or(i32::MAX);
    let n = db
        .execute(
            &stmt,
            &[
                &delivery.id,
                &worker,
                &delivery.claim,
                &attempt.outcome.state(),
                &attempt.retry_in.as_secs_f64(),
                &attempt.at,
                &duration_ms,
                &attempt.status_code,
                &attempt.error,
                &attempt.outcome.as_str(),
            ],
        )
        .await?;
    Ok(n == 1)
}

/// Deliveries whose worker vanished mid-attempt (SIGKILL, a partition): back to pending at once
/// (the receiver may or may not have got it: at least once), or failed past `$1` attempts; the
/// lost attempt is logged so the deliveries route shows it.
pub const REAP_DELIVERIES: &str = "\
with expired as (
    select id from webhook_deliveries
    where state = 'delivering' and lease_expires_at < now()
    for update skip locked
), taken as (
    update webhook_deliveries d
    set state = case when d.attempts >= $1 then 'failed' else 'pending' end,
        finished_at = case when d.attempts >= $1 then now() end,
        claimed_by = null, lease_expires_at = null, next_attempt_at = now()
    from expired where d.id = expired.id
    returning d.id, d.attempts, d.state
)
insert into webhook_attempts (delivery_id, attempt, at, duration_ms, error, outcome)
select id, attempts, now(), 0,
    'worker lost mid-delivery (lease expired); the receiver may have got it',
    case when state = 'failed' then 'failed' else 'retried' end
from taken
on conflict do nothing";

/// Takes back deliveries whose lease expired; returns how many.
pub async fn reap_deliveries(db: &impl GenericClient, max_attempts: i32) -> Result<u64, DbError> {
    let stmt = db.prepare_cached(REAP_DELIVERIES).await?;
    Ok(db.execute(&stmt, &[&max_attempts]).await?)
}

/// Hands this worker's claims back at shutdown; the attempt is not counted.
pub const RELEASE_DELIVERIES: &str = "\
update webhook_deliveries set state = 'pending', attempts = greatest(attempts - 1, 0),
    claimed_by = null, lease_expires_at = null, next_attempt_at = now()
where claimed_by = $1 and state = 'delivering'";

pub async fn release_deliveries(db: &impl GenericClient, worker: &str) -> Result<u64, DbError> {
    let stmt = db.prepare_cached(RELEASE_DELIVERIES).await?;
    Ok(db.execute(&stmt, &[&worker]).await?)
}

/// Seconds until the next claimable delivery is due (those waiting behind an earlier event of
/// their image are not: they would wake the loop for nothing until that one is done).
pub const NEXT_DELIVERY_DUE: &str = "\
select extract(epoch from min(d.next_attempt_at) - now())::float8 from webhook_deliveries d
where d.state = 'pending'
  and not exists (select 1 from webhook_deliveries e
                  where e.image_id = d.image_id and e.url = d.url and e.id < d.id
                    and e.state in ('pending', 'delivering'))";

/// How long until the next delivery is due (zero or negative: now), `None` when none waits.
pub async fn next_delivery_due(db: &impl GenericClient) -> Result<Option<Duration>, DbError> {
    let stmt = db.prepare_cached(NEXT_DELIVERY_DUE).await?;
    let secs: Option<f64> = db.query_one(&stmt, &[]).await?.try_get(0)?;
    Ok(secs.map(|s| Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)))
}

/// One row of an image's delivery log: a delivery and, when it was tried, one attempt.
#[derive(Debug)]
pub struct DeliveryLogRow {
    pub webhook_id: String,
    pub event: String,
    pub url: String,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempt: Option<i32>,
    pub at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i32>,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub outcome: Option<String>,
}

/// The image's most recent `$2` events, oldest first, each with its attempts in order.
pub const LIST_DELIVERIES: &str = "\
select d.webhook_id, d.event, d.url, d.state, d.created_at,
    case when d.state = 'pending' then d.next_attempt_at end,
    a.attempt, a.at, a.duration_ms, a.status_code, a.error, a.outcome
from (select * from webhook_deliveries where image_id = $1 order by id desc limit $2) d
left join webhook_attempts a on a.delivery_id = d.id
order by d.id, a.attempt";

pub async fn list_deliveries(
    db: &impl GenericClient,
    image_id: Uuid,
    limit: i64,
) -> Result<Vec<DeliveryLogRow>, DbError> {
    let stmt = db.prepare_cached(LIST_DELIVERIES).await?;
    let rows = db.query(&stmt, &[&image_id, &limit]).await?;
    rows.iter()
        .map(|r| {
            Ok(DeliveryLogRow {
                webhook_id: r.try_get(0)?,
                event: r.try_get(1)?,
                url: r.try_get(2)?,
                state: r.try_get(3)?,
                created_at: r.try_get(4)?,
                next_attempt_at: r.try_get(5)?,
                attempt: r.try_get(6)?,
                at: r.try_get(7)?,
                duration_ms: r.try_get(8)?,
                status_code: r.try_get(9)?,
                error: r.try_get(10)?,
                outcome: r.try_get(11)?,
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(DbError::from)
}

pub const IMAGE_EXISTS: &str = "select exists (select 1 from processed_images where id = $1)";

/// Whether the image exists (the deliveries route answers `404` otherwise).
pub async fn image_exists(db: &impl GenericClient, id: Uuid) -> Result<bool, DbError> {
    let stmt = db.prepare_cached(IMAGE_EXISTS).await?;
    Ok(db.query_one(&stmt, &[&id]).await?.try_get(0)?)
}
