//! The queue's statements: claim, renew, complete, fail, release, reap.
//!
//! Every write after the claim is fenced on `(claimed_by, claim_seq)`: once a lease expired and
//! the row was claimed again, the late writer's statement matches no row and changes nothing.
//! `claim_seq` grows by one with every claim and is never decremented or reset, so a token is
//! never handed out twice; `attempts` is only the retry budget (a release gives an attempt
//! back, a retry resets it), which is why it cannot be the token.
//!
//! A row whose lease ran out (`lost_leases > 0`) is claimed apart from the rest: one at a time,
//! by a worker with nothing else in flight ([`claim_lost`]), because its job may be what killed
//! the last process that ran it. Its first loss is not charged (the job may have died of a
//! neighbour); a loss while running alone is, with backoff, up to `MAX_ATTEMPTS`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::variants::{self, VariantJob};
use super::DbError;
use crate::presets::VariantFormat;
use crate::states::JobStatus;

/// A claimed job: what the worker needs to process it, and its fencing token.
#[derive(Debug)]
pub struct Job {
    pub id: Uuid,
    /// This claim's attempt number (the retry budget spent so far, this claim included).
    pub attempt: i32,
    /// The fencing token: this claim's `claim_seq`, never issued twice for a row.
    pub claim: i64,
    /// The upload, or `None` when it is over `MAX_UPLOAD_BYTES` (a row a plain SQL `INSERT`
    /// made): such a blob is never read into memory, and the job fails.
    pub original: Option<Vec<u8>>,
    /// The upload's size in bytes, loaded or not.
    pub original_bytes: i64,
    /// This row lost a lease before: it runs alone.
    pub lost_before: bool,
    /// The row has no `sha256` (a SQL INSERT made it): the worker computes the upload-time
    /// facts (hash, EXIF, frames) too.
    pub needs_upload_facts: bool,
    /// The stored pipeline; `None` (SQL `NULL` or JSON `null`): `DEFAULT_PIPELINE`.
    pub pipeline: Option<serde_json::Value>,
    /// When the row became runnable (upload, or end of backoff), for pickup latency.
    pub ready_at: DateTime<Utc>,
    pub claimed_at: DateTime<Utc>,
    /// Set for a variant job (`image_variants`); `id` is then the image's.
    pub variant: Option<VariantJob>,
}

/// The fence every post-claim write carries.
#[derive(Debug, Clone)]
pub struct Fence<'a> {
    pub id: Uuid,
    pub worker: &'a str,
    /// The claim's `claim_seq`.
    pub claim: i64,
    /// For a variant job: its preset and format, the rest of its row's key.
    pub variant: Option<(&'a str, VariantFormat)>,
}

impl Fence<'_> {
    /// The `image_status` payload of this job's new status: `<id>:<status>` for an image,
    /// `<id>:<status>:<preset>:<format>` for a variant (what the status triggers send).
    pub fn status_payload(&self, status: JobStatus) -> String {
        match self.variant {
            None => format!("{}:{status}", self.id),
            Some((preset, format)) => format!("{}:{status}:{preset}:{}", self.id, format.as_str()),
        }
    }
}

/// What a claim sets and returns, shared by both claims. `$1` worker, `$2` the most rows, `$3`
/// lease seconds, `$4` the largest blob to load (`MAX_UPLOAD_BYTES`), `$5` and `$6` how far the
/// claim reaches ahead ([`Take`]): past its first `$5` rows it takes a row only while the
/// originals of the rows up to it add up to at most `$6` bytes. A locked row it leaves is
/// unlocked when the statement commits, for the next claimer.
macro_rules! claim_statement {
    ($which:literal) => {
        concat!(
            "\
with picked as (
    select id, priority, run_after, octet_length(original_data)::int8 as bytes from processed_images
    where status = 'pending' and run_after <= now() and ",
            $which,
            "
    order by priority desc, run_after
    limit $2
    for update skip locked
), sized as (
    select id, row_number() over w as n, (sum(bytes) over w)::int8 as upto from picked
    window w as (order by priority desc, run_after, id rows unbounded preceding)
)
update processed_images p
set status = 'processing', claimed_by = $1, attempts = p.attempts + 1, claim_seq = p.claim_seq + 1,
    lease_expires_at = now() + make_interval(secs => $3), started_at = now(), error = null,
    error_code = null
from sized where p.id = sized.id and (sized.n <= $5 or sized.upto <= $6)
returning p.id, p.attempts, p.claim_seq,
    -- an oversized blob (only SQL can store one) is never sent: its job fails on the size alone
    case when octet_length(p.original_data) <= $4::int8 then p.original_data end,
    -- a JSON `null` (what a plain SQL writer may store) means the default pipeline, as SQL NULL does
    nullif(p.pipeline, 'null'::jsonb),
    greatest(p.uploaded_at, p.run_after), now(), octet_length(p.original_data)::int8,
    p.lost_leases > 0,
    -- a row a SQL INSERT made: the worker reads the facts the API reads at upload
    p.sha256 is null,
    -- the row's place in queue order (RETURNING has no order): jobs start in it
    sized.n"
        )
    };
}

/// Runnable rows that never lost a lease: highest priority first, then the row runnable longest
/// (`processed_images_claim_idx`, `sql/0010_claim_index.sql`).
pub const CLAIM_JOBS: &str = claim_statement!("lost_leases = 0");

/// One runnable row that lost a lease before (the caller passes limit 1).
pub const CLAIM_LOST: &str = claim_statement!("lost_leases > 0");

/// How many rows a claim takes: up to `rows`, all of the first `now` (the free threads start
/// them at once), and past those only while the originals so far add up to at most
/// `ahead_bytes` (rows that wait for a thread, `worker::ahead`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Take {
    pub rows: i64,
    pub now: i64,
    pub ahead_bytes: i64,
}

impl From<i64> for Take {
    /// Up to `rows` rows, whatever their size.
    fn from(rows: i64) -> Take {
        Take {
            rows,
            now: rows,
            ahead_bytes: 0,
        }
    }
}

/// Claims runnable jobs in one statement, as `take` says (a number: up to that many rows), never
/// one that lost a lease.
pub async fn claim_jobs(
    db: &impl GenericClient,
    worker: &str,
    take: impl Into<Take>,
    lease: Duration,
    max_bytes: i64,
) -> Result<Vec<Job>, DbError> {
    claim(db, CLAIM_JOBS, worker, take.into(), lease, max_bytes).await
}

/// Claims one runnable row that lost a lease before, to be run with nothing else in flight.
pub async fn claim_lost(
    db: &impl GenericClient,
    worker: &str,
    lease: Duration,
    max_bytes: i64,
) -> Result<Option<Job>, DbError> {
    Ok(claim(db, CLAIM_LOST, worker, Take::from(1), lease, max_bytes)
        .await?
        .pop())
}

async fn claim(
    db: &impl GenericClient,
    statement: &str,
    worker: &str,
    take: Take,
    lease: Duration,
    max_bytes: i64,
) -> Result<Vec<Job>, DbError> {
    claim_rows(db, statement, worker, take, lease, max_bytes, 10)
        .await?
        .iter()
        .map(|r| {
            Ok(Job {
                id: r.try_get(0)?,
                attempt: r.try_get(1)?,
                claim: r.try_get(2)?,
                original: r.try_get(3)?,
                pipeline: r.try_get(4)?,
                ready_at: r.try_get(5)?,
                claimed_at: r.try_get(6)?,
                original_bytes: r.try_get(7)?,
                lost_before: r.try_get(8)?,
                needs_upload_facts: r.try_get(9)?,
                variant: None,
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(DbError::from)
}

/// Runs a claim statement (an image or a variant one; both take the same parameters) and
/// returns its rows in the order the claim picked them, from their position in column
/// `position_at`: a worker starts them in this order (`worker::ahead`'s threads are handed out
/// first come, first served), so a batch claimed ahead runs highest priority first as well.
pub(super) async fn claim_rows(
    db: &impl GenericClient,
    statement: &str,
    worker: &str,
    take: Take,
    lease: Duration,
    max_bytes: i64,
    position_at: usize,
) -> Result<Vec<tokio_postgres::Row>, DbError> {
    let stmt = db.prepare_cached(statement).await?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
        &worker,
        &take.rows,
        &lease.as_secs_f64(),
        &max_bytes,
        &take.now,
        &take.ahead_bytes,
    ];
    let mut rows = db.query(&stmt, &params).await?;
    rows.sort_by_cached_key(|r| r.try_get::<_, i64>(position_at).unwrap_or(i64::MAX));
    Ok(rows)
}

pub const LOST_WAITING: &str = "\
select exists (select 1 from processed_images
               where status = 'pending' and lost_leases > 0 and run_after <= now())
    or exists (select 1 from image_variants
               where status = 'pending' and lost_leases > 0 and run_after <= now())";

/// Whether a row (image or variant) that lost a lease is runnable (probes of the partial
/// pending indexes).
pub async fn lost_waiting(db: &impl GenericClient) -> Result<bool, DbError> {
    let stmt = db.prepare_cached(LOST_WAITING).await?;
    Ok(db.query_one(&stmt, &[]).await?.try_get(0)?)
}

pub const RENEW_LEASE: &str =
    "update processed_images set lease_expires_at = now() + make_interval(secs => $4) \
     where id = $1 and claimed_by = $2 and claim_seq = $3 and status = 'processing'";

/// Extends the lease; `false` when the claim was lost (the job should be abandoned).
pub async fn renew_lease(
    db: &impl GenericClient,
    fence: &Fence<'_>,
    lease: Duration,
) -> Result<bool, DbError> {
    let secs = lease.as_secs_f64();
    let n = match fence.variant {
        None => {
            let stmt = db.prepare_cached(RENEW_LEASE).await?;
            db.execute(&stmt, &[&fence.id, &fence.worker, &fence.claim, &secs])
                .await?
        }
        Some((preset, format)) => {
            let stmt = db.prepare_cached(variants::RENEW_VARIANT_LEASE).await?;
            let key = (preset, format.as_str());
            db.execute(
                &stmt,
                &[&fence.id, &fence.worker, &fence.claim, &key.0, &key.1, &secs],
            )
            .await?
        }
    };
    Ok(n == 1)
}

/// What the worker produced.
#[derive(Debug, Clone)]
pub struct Completion<'a> {
    pub data: &'a [u8],
    pub content_type: &'a str,
    pub width: i32,
    pub height: i32,
    pub thumbnail: &'a [u8],
    pub thumbnail_content_type: &'a str,
    pub original_content_type: &'a str,
    pub original_width: i32,
    pub original_height: i32,
    pub original_frames: i32,
    pub processed_frames: i32,
    pub blurhash: Option<&'a str>,
    pub dominant_color: Option<&'a str>,
    /// Set only for a row without one (SQL-inserted): the upload-time facts.
    pub sha256: Option<&'a str>,
    pub exif: Option<&'a serde_json::Value>,
}

/// Joined into the statements that end a job, so that their commit waits for the WAL flush
/// although worker connections run with `synchronous_commit=off`: a client may see the row
/// `completed` or `failed` (SSE, the API) as soon as it commits, so a database crash must not
/// take it back. `set_config(..., true)` lasts until the end of the statement's own implicit
/// transaction, i.e. exactly its commit; claims, heartbeats and releases stay asynchronous.
/// The join yields one row, so it is evaluated whenever a row is written.
macro_rules! durable_commit {
    () => {
        "(select set_config('synchronous_commit', 'on', true)) durable"
    };
}

/// [`durable_commit!`], and the status trigger left quiet: the worker sends the notification
/// after the commit ([`notify_status`]), so the commit's flush is not taken under PostgreSQL's
/// notify lock (`sql/0007_status_notify_after_commit.sql` says why).
macro_rules! durable_commit_notify_after {
    () => {
        "(select set_config('synchronous_commit', 'on', true),
        set_config('image_processor.status_notify_after_commit', 'on', true)) durable"
    };
}

/// A job's ending as its worker writes it back.
#[derive(Debug)]
pub enum Ending<'a> {
    Completed(Completion<'a>),
    Failed(&'a Failure),
}

impl Ending<'_> {
    pub fn status(&self) -> JobStatus {
        match self {
            Ending::Completed(_) => JobStatus::Completed,
            Ending::Failed(_) => JobStatus::Failed,
        }
    }
}

/// One write-back of a batch: the claim it is fenced on and how the job ended.
#[derive(Debug)]
pub struct WriteBack<'a> {
    pub fence: Fence<'a>,
    pub ending: Ending<'a>,
}

// The statements that end jobs take a batch: one array per column, `unnest`ed into rows and
// joined to the table on the fence. A worker under load writes every result that finished
// while its previous write was committing in one statement (`worker::writer`): one commit, one
// WAL flush and one run of the statement triggers for all of them, where one each per job
// capped the queue at about 1 000 tiny jobs/s on two cores. `returning` says which rows the
// fence let through; a row another claim holds now simply does not come back.

pub const COMPLETE_JOBS: &str = concat!(
    "\
update processed_images p set status = 'completed', processed_at = now(), processed_data = d.data,
    processed_bytes = octet_length(d.data),
    processed_content_type = d.content_type, processed_width = d.width, processed_height = d.height,
    thumbnail_data = d.thumbnail, thumbnail_content_type = d.thumbnail_content_type,
    original_content_type = d.original_content_type, original_width = d.original_width,
    original_height = d.original_height,
    original_frames = coalesce(p.original_frames, d.original_frames), processed_frames = d.processed_frames,
    blurhash = d.blurhash, dominant_color = d.dominant_color, sha256 = coalesce(p.sha256, d.sha256),
    exif = coalesce(p.exif, d.exif),
    claimed_by = null, lease_expires_at = null, error = null, error_code = null
from unnest($1::uuid[], $2::text[], $3::int8[], $4::bytea[], $5::text[], $6::int4[], $7::int4[],
            $8::bytea[], $9::text[], $10::text[], $11::int4[], $12::int4[], $13::int4[], $14::int4[],
            $15::text[], $16::text[], $17::text[], $18::jsonb[])
    as d(id, worker, claim, data, content_type, width, height, thumbnail, thumbnail_content_type,
         original_content_type, original_width, original_height, original_frames, processed_frames,
         blurhash, dominant_color, sha256, exif),
    ",
    durable_commit_notify_after!(),
    "
where p.id = d.id and p.claimed_by = d.worker and p.claim_seq = d.claim and p.status = 'processing'
returning p.id, p.claim_seq"
);

pub const FAIL_JOBS: &str = concat!(
    "\
update processed_images p set status = 'failed', processed_at = now(), error = d.error,
    error_code = d.error_code, claimed_by = null, lease_expires_at = null
from unnest($1::uuid[], $2::text[], $3::int8[], $4::text[], $5::text[])
    as d(id, worker, claim, error, error_code),
    ",
    durable_commit_notify_after!(),
    "
where p.id = d.id and p.claimed_by = d.worker and p.claim_seq = d.claim and p.status = 'processing'
returning p.id, p.claim_seq"
);

/// Writes a batch of job endings, each only if its claim still holds; says which were written
/// (`false`: fenced off), in the order given. Each statement commits durably on its own; the
/// rows go in id order, so two batches never wait on each other's locks in opposite orders.
/// The status notifications are left to the caller, after the commits ([`notify_statuses`]).
pub async fn write_back(db: &impl GenericClient, batch: &[WriteBack<'_>]) -> Result<Vec<bool>, DbError> {
    let mut written = vec![false; batch.len()];
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by_key(|&i| batch[i].fence.id);
    let (mut done, mut failed, mut variants_done, mut variants_failed) = (vec![], vec![], vec![], vec![]);
    for i in order {
        let item = &batch[i];
        match (&item.ending, item.fence.variant.is_some()) {
            (Ending::Completed(c), false) => done.push((i, &item.fence, c)),
            (Ending::Failed(f), false) => failed.push((i, &item.fence, *f)),
            (Ending::Completed(c), true) => variants_done.push((i, &item.fence, c)),
            (Ending::Failed(f), true) => variants_failed.push((i, &item.fence, *f)),
        }
    }
    if !done.is_empty() {
        let stmt = db.prepare_cached(COMPLETE_JOBS).await?;
        let done_keys = fence_keys(&done);
        let c = |f: fn(&&Completion<'_>) -> i32| column(&done, f);
        let rows = db
            .query(
                &stmt,
                &[
                    &done_keys.0,
                    &done_keys.1,
                    &done_keys.2,
                    &column(&done, |c| c.data),
                    &column(&done, |c| c.content_type),
                    &c(|c| c.width),
                    &c(|c| c.height),
                    &column(&done, |c| c.thumbnail),
                    &column(&done, |c| c.thumbnail_content_type),
                    &column(&done, |c| c.original_content_type),
                    &c(|c| c.original_width),
                    &c(|c| c.original_height),
                    &c(|c| c.original_frames),
                    &c(|c| c.processed_frames),
                    &column(&done, |c| c.blurhash),
                    &column(&done, |c| c.dominant_color),
                    &column(&done, |c| c.sha256),
                    &column(&done, |c| c.exif),
                ],
            )
            .await?;
        mark_written(&rows, &done, &mut written)?;
    }
    if !failed.is_empty() {
        let stmt = db.prepare_cached(FAIL_JOBS).await?;
        let failed_keys = fence_keys(&failed);
        let rows = db
            .query(
                &stmt,
                &[
                    &failed_keys.0,
                    &failed_keys.1,
                    &failed_keys.2,
                    &column(&failed, |e| e.message.as_str()),
                    &column(&failed, |e| e.code),
                ],
            )
            .await?;
        mark_written(&rows, &failed, &mut written)?;
    }
    if !variants_done.is_empty() {
        variants::complete_variants(db, &variants_done, &mut written).await?;
    }
    if !variants_failed.is_empty() {
        variants::fail_variants(db, &variants_failed, &mut written).await?;
    }
    Ok(written)
}

/// A batch entry of [`write_back`]: its index in the batch, its fence, what to write.
pub(super) type Entry<'b, 'a, T> = (usize, &'b Fence<'a>, T);

/// The fence's columns of a batch: ids, workers, claims.
pub(super) fn fence_keys<'b, T>(
    entries: &'b [Entry<'_, 'b, T>],
) -> (Vec<uuid::Uuid>, Vec<&'b str>, Vec<i64>) {
    (
        entries.iter().map(|(_, f, _)| f.id).collect(),
        entries.iter().map(|(_, f, _)| f.worker).collect(),
        entries.iter().map(|(_, f, _)| f.claim).collect(),
    )
}

/// One column of a batch's entries.
pub(super) fn column<'b, T, U>(entries: &'b [Entry<'_, '_, T>], f: impl Fn(&'b T) -> U) -> Vec<U> {
    entries.iter().map(|(_, _, t)| f(t)).collect()
}

/// Marks as written the batch entries whose `(id, claim_seq)` came back from an image
/// statement's `returning`.
fn mark_written<T>(
    rows: &[tokio_postgres::Row],
    sent: &[(usize, &Fence<'_>, T)],
    written: &mut [bool],
) -> Result<(), DbError> {
    for row in rows {
        let (id, claim): (Uuid, i64) = (row.try_get(0)?, row.try_get(1)?);
        for (i, fence, _) in sent {
            if fence.id == id && fence.claim == claim {
                written[*i] = true;
            }
        }
    }
    Ok(())
}

/// Stores the result if this worker still holds the claim; `false` when fenced off.
pub async fn complete_if_still_owner(
    db: &impl GenericClient,
    fence: &Fence<'_>,
    done: &Completion<'_>,
) -> Result<bool, DbError> {
    let one = WriteBack {
        fence: fence.clone(),
        ending: Ending::Completed(done.clone()),
    };
    Ok(write_back(db, std::slice::from_ref(&one)).await? == [true])
}

/// Why a job failed: a stable code for machines and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `corrupt_image`, `image_too_large`, `invalid_pipeline`, `processing_crashed`, ...
    pub code: &'static str,
    pub message: String,
}

/// Ends the job `failed` with a human message and its stable code, if this worker still
/// holds the claim.
pub async fn fail_if_still_owner(
    db: &impl GenericClient,
    fence: &Fence<'_>,
    failure: &Failure,
) -> Result<bool, DbError> {
    let one = WriteBack {
        fence: fence.clone(),
        ending: Ending::Failed(failure),
    };
    Ok(write_back(db, std::slice::from_ref(&one)).await? == [true])
}

pub const RELEASE_JOB: &str = "\
update processed_images set status = 'pending', attempts = greatest(attempts - 1, 0),
    claimed_by = null, lease_expires_at = null, run_after = now(), started_at = null
where id = $1 and claimed_by = $2 and claim_seq = $3 and status = 'processing'";

/// Hands an unfinished job back at once (graceful shutdown); the attempt is not counted.
pub async fn release_job(db: &impl GenericClient, fence: &Fence<'_>) -> Result<bool, DbError> {
    let n = match fence.variant {
        None => {
            let stmt = db.prepare_cached(RELEASE_JOB).await?;
            db.execute(&stmt, &[&fence.id, &fence.worker, &fence.claim])
                .await?
        }
        Some((preset, format)) => {
            let stmt = db.prepare_cached(variants::RELEASE_VARIANT).await?;
            db.execute(
                &stmt,
                &[&fence.id, &fence.worker, &fence.claim, &preset, &format.as_str()],
            )
            .await?
        }
    };
    Ok(n == 1)
}

// Finds expired leases through the partial index of processing rows (as many as there are
// worker threads), not an index on `lease_expires_at`: heartbeats stay HOT updates
// (`sql/0008_table_health.sql`).
//
// Every expression reads the row as it was: `lost_leases = 0` is "this was its first loss".
// A first loss is not charged (the attempt is given back) and goes straight back to the queue,
// where `claim_lost` runs it alone ahead of any backlog. A loss while running alone is charged,
// with exponential backoff, and fails the row past `MAX_ATTEMPTS`.
pub const REAP_EXPIRED: &str = concat!(
    "\
update processed_images set
    status = case when lost_leases > 0 and attempts >= $1 then 'failed' else 'pending' end,
    processed_at = case when lost_leases > 0 and attempts >= $1 then now() end,
    attempts = case when lost_leases = 0 then greatest(attempts - 1, 0) else attempts end,
    lost_leases = lost_leases + 1,
    error = 'worker lost mid-job (lease expired; ' || lost_leases + 1 || ' lost lease(s), '
        || attempts || ' attempt(s))',
    error_code = 'worker_lost',
    claimed_by = null, lease_expires_at = null,
    -- exponential backoff with jitter: about 1 s, 2 s, 4 s ... capped at 5 minutes
    run_after = case when lost_leases = 0 then now()
        else now() + make_interval(secs => least(power(2, attempts - 1), 300) * (0.5 + random() / 2)) end
from ",
    // Rows past MAX_ATTEMPTS end `failed` here, which a client may see at once.
    durable_commit!(),
    "
where id in (select id from processed_images
             where status = 'processing' and lease_expires_at < now()
             for update skip locked)"
);

/// Returns jobs whose worker vanished to the queue (or fails them after `max_attempts`).
pub async fn reap_expired(db: &impl GenericClient, max_attempts: i32) -> Result<u64, DbError> {
    let stmt = db.prepare_cached(REAP_EXPIRED).await?;
    Ok(db.execute(&stmt, &[&max_attempts]).await?)
}

pub const NOTIFY_STATUS: &str = "select pg_notify('image_status', $1)";

pub const NOTIFY_LOST: &str = "select pg_notify('image_jobs', 'lost')";

/// Tells every worker that a reap took rows back: they are claimed apart, one at a time by a
/// worker with nothing else in flight, so each worker asks `lost_waiting` again
/// (`worker::LOST_PAYLOAD`).
pub async fn notify_lost(db: &impl GenericClient) -> Result<(), DbError> {
    let stmt = db.prepare_cached(NOTIFY_LOST).await?;
    db.execute(&stmt, &[]).await?;
    Ok(())
}

pub const NOTIFY_STATUSES: &str = "select pg_notify('image_status', p) from unnest($1::text[]) p";

/// Sends the status notification a completion or failure left to its writer, after its commit.
pub async fn notify_status(
    db: &impl GenericClient,
    fence: &Fence<'_>,
    status: JobStatus,
) -> Result<(), DbError> {
    let stmt = db.prepare_cached(NOTIFY_STATUS).await?;
    db.execute(&stmt, &[&fence.status_payload(status)]).await?;
    Ok(())
}

/// [`notify_status`] for a written batch, in one statement (`payloads` from
/// [`Fence::status_payload`]).
pub async fn notify_statuses(db: &impl GenericClient, payloads: &[String]) -> Result<(), DbError> {
    let stmt = db.prepare_cached(NOTIFY_STATUSES).await?;
    db.execute(&stmt, &[&payloads]).await?;
    Ok(())
}

pub const NEXT_DUE: &str = "\
select extract(epoch from least(
    (select min(run_after) from processed_images where status = 'pending'),
    (select min(run_after) from image_variants where status = 'pending')) - now())::float8";

/// How long until the earliest pending row (image or variant) becomes runnable (zero or
/// negative: it already is), or `None` when nothing is pending.
pub async fn next_due(db: &impl GenericClient) -> Result<Option<Duration>, DbError> {
    let stmt = db.prepare_cached(NEXT_DUE).await?;
    let secs: Option<f64> = db.query_one(&stmt, &[]).await?.try_get(0)?;
    Ok(secs.map(|s| Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)))
}

/// Every statement of this module, `images` and `webhooks`, so a test can prepare them all.
pub const ALL_STATEMENTS: &[&str] = &[
    CLAIM_JOBS,
    CLAIM_LOST,
    LOST_WAITING,
    RENEW_LEASE,
    COMPLETE_JOBS,
    FAIL_JOBS,
    RELEASE_JOB,
    REAP_EXPIRED,
    NEXT_DUE,
    NOTIFY_STATUS,
    NOTIFY_STATUSES,
    NOTIFY_LOST,
    variants::CLAIM_VARIANTS,
    variants::CLAIM_LOST_VARIANT,
    variants::RENEW_VARIANT_LEASE,
    variants::COMPLETE_VARIANTS,
    variants::FAIL_VARIANTS,
    variants::RELEASE_VARIANT,
    variants::REAP_EXPIRED_VARIANTS,
    variants::MISSING_PRESETS,
    variants::QUEUE_VARIANTS,
    variants::NOTIFY_VARIANTS,
    variants::GET_VARIANT,
    variants::GET_VARIANT_DATA,
    super::images::INSERT_IMAGE,
    super::images::COPY_IMAGE,
    super::images::COPY_IMAGE_TYPES,
    super::images::NEW_IMAGE,
    super::images::NOTIFY_INSERTED,
    super::images::GET_IMAGE,
    super::images::LIST_IMAGES,
    super::images::GET_ORIGINAL,
    super::images::GET_PROCESSED,
    super::images::GET_THUMBNAIL,
    super::images::RETRY_IMAGE,
    super::images::DELETE_IMAGE,
    super::images::LIST_IMAGES_BEFORE,
    super::images::LIST_IMAGES_BY_STATUS,
    super::images::LIST_IMAGES_BY_STATUS_BEFORE,
    super::stats::STATS,
    super::stats::STATS_HISTORY,
    super::images::FIND_DUPLICATE,
    super::images::GET_WATERMARKS,
    super::images::COMPLETED_AMONG,
    crate::retention::DELETE_EXPIRED,
    super::control::CANCEL_IMAGE,
    super::control::NOTIFY_CANCEL,
    super::control::BULK_RETRY,
    super::control::BULK_DELETE,
    super::webhooks::CLAIM_DELIVERIES,
    super::webhooks::RECORD_ATTEMPT,
    super::webhooks::REAP_DELIVERIES,
    super::webhooks::RELEASE_DELIVERIES,
    super::webhooks::NEXT_DELIVERY_DUE,
    super::webhooks::LIST_DELIVERIES,
    super::webhooks::IMAGE_EXISTS,
    super::presets::UPSERT_PRESET,
    super::presets::GET_PRESET,
    super::presets::LIST_PRESETS,
    super::presets::DELETE_PRESET,
];
