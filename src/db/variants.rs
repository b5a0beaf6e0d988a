//! Statements on `image_variants` (`sql/0015_presets_variants.sql`): the variant jobs' claim,
//! lease, completion, failure, release and reap — the images' rules (`jobs`), on rows keyed
//! `(image_id, preset, format)` — and what the API reads and queues.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::jobs::{column, Completion, Entry, Failure, Fence, Job, Take};
use super::DbError;
use crate::presets::VariantFormat;
use crate::states::JobStatus;

/// The variant a claim is for.
#[derive(Debug, Clone)]
pub struct VariantJob {
    pub preset: String,
    pub format: VariantFormat,
    /// The preset's stored pipeline; `None` when no preset has that name (deleted, or a SQL
    /// INSERT named one that never existed): the job fails saying so.
    pub preset_pipeline: Option<serde_json::Value>,
}

/// What a variant claim sets and returns; the parameters are the images' claim's (`$1` worker,
/// `$2` the most rows, `$3` lease seconds, `$4` the largest original to load, `$5`/`$6` how far
/// it reaches ahead, `jobs::Take`).
macro_rules! claim_variants_statement {
    ($which:literal) => {
        concat!(
            "\
with picked as (
    select image_id, preset, format, priority, run_after from image_variants
    where status = 'pending' and run_after <= now() and ",
            $which,
            "
    order by priority desc, run_after
    limit $2
    for update skip locked
), sized as (
    select picked.image_id, picked.preset, picked.format, row_number() over w as n,
        (sum(octet_length(i.original_data)::int8) over w)::int8 as upto
    from picked join processed_images i on i.id = picked.image_id
    window w as (order by picked.priority desc, picked.run_after, picked.image_id, picked.preset,
        picked.format rows unbounded preceding)
)
update image_variants v
set status = 'processing', claimed_by = $1, attempts = v.attempts + 1, claim_seq = v.claim_seq + 1,
    lease_expires_at = now() + make_interval(secs => $3), started_at = now(), error = null,
    error_code = null
from sized
join processed_images p on p.id = sized.image_id
left join image_presets s on s.name = sized.preset
where v.image_id = sized.image_id and v.preset = sized.preset and v.format = sized.format
    and (sized.n <= $5 or sized.upto <= $6)
returning v.image_id, v.attempts, v.claim_seq,
    case when octet_length(p.original_data) <= $4::int8 then p.original_data end,
    s.pipeline, v.run_after, now(), octet_length(p.original_data)::int8, v.lost_leases > 0,
    v.preset, v.format, sized.n"
        )
    };
}

/// Runnable variants that never lost a lease, highest priority first (`image_variants_claim_idx`).
pub const CLAIM_VARIANTS: &str = claim_variants_statement!("lost_leases = 0");

/// One runnable variant that lost a lease before (run alone, as such images are).
pub const CLAIM_LOST_VARIANT: &str = claim_variants_statement!("lost_leases > 0");

/// Claims up to `limit` runnable variant jobs.
pub async fn claim_variants(
    db: &impl GenericClient,
    statement: &str,
    worker: &str,
    take: impl Into<Take>,
    lease: std::time::Duration,
    max_bytes: i64,
) -> Result<Vec<Job>, DbError> {
    super::jobs::claim_rows(db, statement, worker, take.into(), lease, max_bytes, 11)
        .await?
        .iter()
        .map(|r| {
            let format: String = r.try_get(10)?;
            Ok(Job {
                id: r.try_get(0)?,
                attempt: r.try_get(1)?,
                claim: r.try_get(2)?,
                original: r.try_get(3)?,
                pipeline: None,
                ready_at: r.try_get(5)?,
                claimed_at: r.try_get(6)?,
                original_bytes: r.try_get(7)?,
                lost_before: r.try_get(8)?,
                needs_upload_facts: false,
                variant: Some(VariantJob {
                    preset: r.try_get(9)?,
                    // The column's CHECK allows nothing else.
                    format: VariantFormat::parse(&format).unwrap_or(VariantFormat::Own),
                    preset_pipeline: r.try_get(4)?,
                }),
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(DbError::from)
}

/// The fence of a variant row: the images' `(claimed_by, claim_seq)` on its key. `$1` image,
/// `$2` worker, `$3` claim, then `$4` preset and `$5` format; each statement's own
/// parameters follow.
macro_rules! variant_fence {
    () => {
        "image_id = $1 and claimed_by = $2 and claim_seq = $3 and preset = $4 and format = $5 \
         and status = 'processing'"
    };
}

pub const RENEW_VARIANT_LEASE: &str = concat!(
    "update image_variants set lease_expires_at = now() + make_interval(secs => $6) where ",
    variant_fence!()
);

// The variants' batch write-backs (`jobs::write_back` says why batches).

pub const COMPLETE_VARIANTS: &str = "\
update image_variants v set status = 'completed', processed_at = now(), data = d.data,
    bytes = octet_length(d.data), content_type = d.content_type, width = d.width, height = d.height,
    claimed_by = null, lease_expires_at = null, error = null, error_code = null
from unnest($1::uuid[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::bytea[], $7::text[],
            $8::int4[], $9::int4[])
    as d(id, worker, claim, preset, format, data, content_type, width, height),
    (select set_config('synchronous_commit', 'on', true),
        set_config('image_processor.status_notify_after_commit', 'on', true)) durable
where v.image_id = d.id and v.claimed_by = d.worker and v.claim_seq = d.claim
    and v.preset = d.preset and v.format = d.format and v.status = 'processing'
returning v.image_id, v.claim_seq, v.preset, v.format";

pub const FAIL_VARIANTS: &str = "\
update image_variants v set status = 'failed', processed_at = now(), error = d.error,
    error_code = d.error_code, claimed_by = null, lease_expires_at = null
from unnest($1::uuid[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::text[])
    as d(id, worker, claim, preset, format, error, error_code),
    (select set_config('synchronous_commit', 'on', true),
        set_config('image_processor.status_notify_after_commit', 'on', true)) durable
where v.image_id = d.id and v.claimed_by = d.worker and v.claim_seq = d.claim
    and v.preset = d.preset and v.format = d.format and v.status = 'processing'
returning v.image_id, v.claim_seq, v.preset, v.format";

/// Completes the variant entries of a `jobs::write_back` batch, marking those written.
pub(super) async fn complete_variants(
    db: &impl GenericClient,
    done: &[Entry<'_, '_, &Completion<'_>>],
    written: &mut [bool],
) -> Result<(), DbError> {
    let data = column(done, |c| c.data);
    let content_types = column(done, |c| c.content_type);
    let (widths, heights) = (column(done, |c| c.width), column(done, |c| c.height));
    write_variants(
        db,
        COMPLETE_VARIANTS,
        done,
        &[&data, &content_types, &widths, &heights],
        written,
    )
    .await
}

/// Fails the variant entries of a `jobs::write_back` batch, marking those written.
pub(super) async fn fail_variants(
    db: &impl GenericClient,
    failed: &[Entry<'_, '_, &Failure>],
    written: &mut [bool],
) -> Result<(), DbError> {
    let (messages, codes) = (column(failed, |e| e.message.as_str()), column(failed, |e| e.code));
    write_variants(db, FAIL_VARIANTS, failed, &[&messages, &codes], written).await
}

/// Runs a variants batch statement: the fence's five columns, then `rest`.
async fn write_variants<T>(
    db: &impl GenericClient,
    statement: &str,
    entries: &[Entry<'_, '_, T>],
    rest: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    written: &mut [bool],
) -> Result<(), DbError> {
    let stmt = db.prepare_cached(statement).await?;
    let keys = fence_columns(entries);
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        vec![&keys.0, &keys.1, &keys.2, &keys.3, &keys.4];
    params.extend_from_slice(rest);
    let rows = db.query(&stmt, &params).await?;
    mark_written(&rows, entries, written)
}

/// The fence's columns of a batch: ids, workers, claims, presets, formats.
#[allow(clippy::type_complexity)]
fn fence_columns<'b, T>(
    entries: &'b [Entry<'_, 'b, T>],
) -> (Vec<Uuid>, Vec<&'b str>, Vec<i64>, Vec<&'b str>, Vec<&'static str>) {
    let key = |f: &Fence<'b>| f.variant.unwrap_or(("", VariantFormat::Own));
    let (ids, workers, claims) = super::jobs::fence_keys(entries);
    (
        ids,
        workers,
        claims,
        entries.iter().map(|(_, f, _)| key(f).0).collect(),
        entries.iter().map(|(_, f, _)| key(f).1.as_str()).collect(),
    )
}

/// Marks as written the entries whose variant row came back from `returning`.
fn mark_written<T>(
    rows: &[tokio_postgres::Row],
    sent: &[Entry<'_, '_, T>],
    written: &mut [bool],
) -> Result<(), DbError> {
    for row in rows {
        let id: Uuid = row.try_get(0)?;
        let claim: i64 = row.try_get(1)?;
        let preset: &str = row.try_get(2)?;
        let format: &str = row.try_get(3)?;
        for (i, fence, _) in sent {
            let (p, f) = fence.variant.unwrap_or(("", VariantFormat::Own));
            if fence.id == id && fence.claim == claim && p == preset && f.as_str() == format {
                written[*i] = true;
            }
        }
    }
    Ok(())
}

pub const RELEASE_VARIANT: &str = concat!(
    "\
update image_variants set status = 'pending', attempts = greatest(attempts - 1, 0),
    claimed_by = null, lease_expires_at = null, run_after = now(), started_at = null
where ",
    variant_fence!()
);

/// The images' lease sweep (`jobs::REAP_EXPIRED`), on variants: a first loss goes back at
/// once, uncharged; a loss while running alone is charged, with backoff, up to `$1` attempts.
pub const REAP_EXPIRED_VARIANTS: &str = "\
update image_variants set
    status = case when lost_leases > 0 and attempts >= $1 then 'failed' else 'pending' end,
    processed_at = case when lost_leases > 0 and attempts >= $1 then now() end,
    attempts = case when lost_leases = 0 then greatest(attempts - 1, 0) else attempts end,
    lost_leases = lost_leases + 1,
    error = 'worker lost mid-job (lease expired; ' || lost_leases + 1 || ' lost lease(s), '
        || attempts || ' attempt(s))',
    error_code = 'worker_lost',
    claimed_by = null, lease_expires_at = null,
    run_after = case when lost_leases = 0 then now()
        else now() + make_interval(secs => least(power(2, attempts - 1), 300) * (0.5 + random() / 2)) end
from (select set_config('synchronous_commit', 'on', true)) durable
where (image_id, preset, format) in (
    select image_id, preset, format from image_variants
    where status = 'processing' and lease_expires_at < now()
    for update skip locked)";

pub async fn reap_expired_variants(db: &impl GenericClient, max_attempts: i32) -> Result<u64, DbError> {
    let stmt = db.prepare_cached(REAP_EXPIRED_VARIANTS).await?;
    Ok(db.execute(&stmt, &[&max_attempts]).await?)
}

/// Preset names among `$1` that no preset has (an upload's `variants` must name existing ones).
pub const MISSING_PRESETS: &str = "\
select n from unnest($1::text[]) n
where not exists (select 1 from image_presets where name = n)";

pub async fn missing_presets(db: &impl GenericClient, names: &[String]) -> Result<Vec<String>, DbError> {
    let stmt = db.prepare_cached(MISSING_PRESETS).await?;
    let rows = db.query(&stmt, &[&names]).await?;
    rows.iter().map(|r| r.try_get(0).map_err(DbError::from)).collect()
}

/// Queues variants of an image (its priority and run-after), leaving any that exist as they
/// are. The API's connections notify after the commit (`images::notify_inserted`).
pub const QUEUE_VARIANTS: &str = "\
insert into image_variants (image_id, preset, format, priority, run_after)
select p.id, n, $3, p.priority, greatest(now(), p.not_before)
from processed_images p, unnest($2::text[]) n
where p.id = $1
on conflict do nothing";

/// Returns how many variants were queued (0 when all existed already).
pub async fn queue_variants(
    db: &impl GenericClient,
    image: Uuid,
    presets: &[String],
    format: VariantFormat,
) -> Result<u64, DbError> {
    let stmt = db.prepare_cached(QUEUE_VARIANTS).await?;
    Ok(db.execute(&stmt, &[&image, &presets, &format.as_str()]).await?)
}

pub const NOTIFY_VARIANTS: &str = "select pg_notify('variant_jobs', '')";

/// Wakes the workers for variants queued on an API connection (whose triggers stay quiet until
/// after the commit, `sql/0003`); sent after the commit.
pub async fn notify_variants(db: &impl GenericClient) -> Result<(), DbError> {
    let stmt = db.prepare_cached(NOTIFY_VARIANTS).await?;
    db.execute(&stmt, &[]).await?;
    Ok(())
}

/// One variant as the API shows it (no bytes).
#[derive(Debug, Clone)]
pub struct VariantRecord {
    pub status: JobStatus,
    pub content_type: Option<String>,
    pub bytes: Option<i64>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub error: Option<String>,
    pub error_code: Option<String>,
    /// Grows with every claim: part of the ETag, so a variant made again gets a new one.
    pub claim_seq: i64,
    pub processed_at: Option<DateTime<Utc>>,
}

/// A variant and what the request needs of its image and preset: `$1` image, `$2` preset,
/// `$3` format. One row when the image exists (the variant's columns null when it was never
/// queued).
pub const GET_VARIANT: &str = "\
select p.status, p.filename, s.pipeline, v.status, v.content_type, v.bytes, v.width, v.height,
    v.error, v.error_code, v.claim_seq, v.processed_at
from processed_images p
left join image_presets s on s.name = $2
left join image_variants v on v.image_id = p.id and v.preset = $2 and v.format = $3
where p.id = $1";

/// What [`get_variant`] found.
#[derive(Debug, Clone)]
pub struct VariantLookup {
    pub image_status: JobStatus,
    pub filename: Option<String>,
    /// The preset's pipeline, `None` when no preset has that name.
    pub preset_pipeline: Option<serde_json::Value>,
    /// `None` when this variant was never queued.
    pub variant: Option<VariantRecord>,
}

/// `None` when the image does not exist.
pub async fn get_variant(
    db: &impl GenericClient,
    image: Uuid,
    preset: &str,
    format: VariantFormat,
) -> Result<Option<VariantLookup>, DbError> {
    let stmt = db.prepare_cached(GET_VARIANT).await?;
    let Some(r) = db.query_opt(&stmt, &[&image, &preset, &format.as_str()]).await? else {
        return Ok(None);
    };
    let status: Option<JobStatus> = r.try_get(3)?;
    Ok(Some(VariantLookup {
        image_status: r.try_get(0)?,
        filename: r.try_get(1)?,
        preset_pipeline: r.try_get(2)?,
        variant: match status {
            None => None,
            Some(status) => Some(VariantRecord {
                status,
                content_type: r.try_get(4)?,
                bytes: r.try_get(5)?,
                width: r.try_get(6)?,
                height: r.try_get(7)?,
                error: r.try_get(8)?,
                error_code: r.try_get(9)?,
                claim_seq: r.try_get(10)?,
                processed_at: r.try_get(11)?,
            }),
        },
    }))
}

/// A completed variant's bytes and ETag ingredients (`$1` image, `$2` preset, `$3` format).
pub const GET_VARIANT_DATA: &str = "\
select data, content_type, claim_seq from image_variants
where image_id = $1 and preset = $2 and format = $3 and status = 'completed'";

/// The bytes, their type and the claim that made them; `None` unless completed.
pub async fn get_variant_data(
    db: &impl GenericClient,
    image: Uuid,
    preset: &str,
    format: VariantFormat,
) -> Result<Option<(Vec<u8>, Option<String>, i64)>, DbError> {
    let stmt = db.prepare_cached(GET_VARIANT_DATA).await?;
    let row = db.query_opt(&stmt, &[&image, &preset, &format.as_str()]).await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .transpose()
}
