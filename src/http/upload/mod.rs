//! Uploads: the body is read by the [`UploadBody`](body::UploadBody) extractor; here every
//! file is sniffed from its bytes and checked against `MAX_PIXELS` from its header, the
//! pipeline parsed, and all of it stored in one transaction, before anything is queued.

mod body;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::{ImageBatch, ImageObject, Operations, UploadAnswer, UploadBytes, UploadForm};
use super::error::ApiError;
use super::error::ErrorBody;
use super::legacy;
use super::state::AppState;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::db::images::{self, NewImage, VariantSummary};
use crate::db::{self, variants, DbError};
use crate::imaging::facts::UploadFacts;
use crate::imaging::{self, Format, ImagingError, Pipeline, Probe};
use crate::presets::{PresetName, VariantFormat};
use body::{Upload, UploadBody};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(legacy::alias("/upload", routes!(upload)))
}

/// `POST /api/images` and the original design's `POST /upload`.
#[utoipa::path(post, path = "/api/images", tag = "images",
    params(Operations, ("filename" = Option<String>, Query, description = "the stored name of a raw-body upload")),
    request_body(description = "multipart with one or more `file` parts (operation fields or `pipeline` \
                                alongside), or the raw image bytes",
        content(
            (UploadForm = "multipart/form-data"),
            (UploadBytes = "image/*"),
            (UploadBytes = "application/octet-stream"),
        )),
    responses(
        (status = 202, description = "stored and queued: the image object for one file, `{\"images\": [...]}` for several",
            headers(("Location" = String, description = "the (first) image's URL")),
            body = UploadAnswer),
        (status = 200, description = "`dedupe=true` and every file matched an earlier image (same bytes, same \
                                      effective pipeline, not failed or cancelled): that image, nothing queued",
            headers(("Location" = String, description = "the (first) earlier image's URL")),
            body = UploadAnswer),
        (status = 400, description = "bad operation field, pipeline or form; `param` names it (`steps[0].width` \
                                      for a JSON pipeline)", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 413, description = "a file over `MAX_UPLOAD_BYTES`", body = ErrorBody),
        (status = 415, description = "not an image we read (sniffed from the bytes): we read JPEG, PNG, GIF, \
                                      WebP, BMP, TIFF, HEIC/HEIF, AVIF and JPEG XL", body = ErrorBody),
        (status = 422, description = "readable but refused (over `MAX_PIXELS`, corrupt header)", body = ErrorBody),
        (status = 503, description = "database unavailable or too many uploads at once (`Retry-After`)", body = ErrorBody),
    ))]
pub async fn upload(State(state): State<AppState>, body: UploadBody) -> Result<Response, ApiError> {
    // `_slot` is held until the answer is built: the upload's memory stays counted.
    let UploadBody {
        files,
        mut fields,
        slot: _slot,
    } = body;
    let job = JobFields::take(&mut fields)?;
    let pipeline = parse_pipeline(&fields)?;
    if let Some(p) = &pipeline {
        check_watermarks(&state, p).await?;
    }
    let probes = probe_all(&state, &files).await?;
    let (count, bytes) = (files.len(), files.iter().map(|f| f.data.len()).sum());
    let stored = if files.iter().any(|f| f.data.len() >= db::LARGE_BLOB_BYTES) {
        // Streamed in with COPY (see `store`), which must not be abandoned: when a client goes
        // away axum drops its handler, and a COPY dropped before it started leaves its
        // connection owed a reply. On its own task the upload is stored or rolled back whatever
        // the client does, still holding its upload slot.
        let state = state.clone();
        let task = tokio::spawn(async move {
            let _slot = _slot;
            store(&state, &files, &probes, pipeline.as_ref(), &job).await
        });
        task.await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("the upload's store task failed: {e}")))??
    } else {
        store(&state, &files, &probes, pipeline.as_ref(), &job).await?
    };
    let duplicates = stored.iter().filter(|s| s.duplicate).count();
    tracing::info!(files = stored.len(), duplicates, "accepted upload");
    crate::metrics::upload_accepted(count, bytes);
    Ok(answer(&state, stored))
}

/// One file of an upload, as stored.
struct Stored {
    record: images::ImageRecord,
    /// An earlier upload answered for it (`dedupe=true`); nothing was inserted.
    duplicate: bool,
    /// Its notifications went out with its INSERT (`images::insert_image_notified`).
    notified: bool,
}

/// Inserts every file as a pending job in one transaction (for one file without variants, the
/// INSERT's own), then wakes the workers. With `dedupe`, a file whose bytes and effective
/// pipeline match an earlier image that has not failed (or been cancelled) is answered with
/// that image instead. Best effort: two identical uploads in flight at the same moment may both
/// be stored.
async fn store(
    state: &AppState,
    files: &[Upload],
    probes: &[(Probe, UploadFacts)],
    pipeline: Option<&Pipeline>,
    job: &JobFields,
) -> Result<Vec<Stored>, ApiError> {
    let pipeline_json = pipeline
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| ApiError::Internal(e.into()))?;
    let effective = pipeline_json.as_ref().unwrap_or(&state.default_pipeline);
    let largest = files.iter().map(|f| f.data.len()).max().unwrap_or(0);
    let pool = if largest >= db::LARGE_BLOB_BYTES {
        &state.blob_pool
    } else {
        &state.pool
    };
    let mut client = pool.get().await?;
    let single = files.len() == 1 && job.variants.is_empty() && largest < db::LARGE_BLOB_BYTES;
    let records = if let ([file], [(probe, facts)], true) = (files, probes, single) {
        // One file and no variants: its INSERT is atomic on its own and commits as it
        // completes (durably: the API's connections commit synchronously). Without BEGIN and
        // COMMIT that is one round trip to the database instead of three. Large files go the
        // other way: they are copied in (`images::copy_image`), in a transaction.
        let new = Pending {
            file,
            probe,
            facts,
            pipeline: pipeline_json.as_ref(),
        };
        vec![store_file(state, &client, &new, effective, job, Notify::WithInsert).await?]
    } else {
        let stored = store_in_transaction(
            state,
            &mut client,
            files,
            probes,
            pipeline_json.as_ref(),
            effective,
            job,
        )
        .await;
        match stored {
            Ok(records) => records,
            Err(e) => {
                // A failed COPY may leave this connection owed one reply too many: tokio-postgres
                // 0.7 sends a second Sync when a COPY that never started is dropped
                // (rust-postgres issue #789), which would answer the next borrower's statement
                // with the previous one's result. Closed, not pooled.
                if largest >= db::LARGE_BLOB_BYTES {
                    drop(deadpool_postgres::Object::take(client));
                }
                return Err(e);
            }
        }
    };
    let inserted: Vec<&images::ImageRecord> = records
        .iter()
        .filter(|s| !s.duplicate && !s.notified)
        .map(|s| &s.record)
        .collect();
    // The rows are stored: a failed notification only delays them until the workers' sweep.
    if !inserted.is_empty() {
        if let Err(e) = images::notify_inserted(&client, &inserted).await {
            tracing::warn!(error = %e, "could not notify workers after the upload; the sweep will find it");
        }
    }
    // Variants (on new images or, with `dedupe`, an earlier one) wake the workers on their own
    // channel.
    if !job.variants.is_empty() {
        if let Err(e) = variants::notify_variants(&client).await {
            tracing::warn!(error = %e, "could not notify workers of the variants; the sweep will find them");
        }
    }
    // Pooled again whatever it carried: files from `LARGE_BLOB_BYTES` up were streamed in
    // slices (`images::copy_image`), the rest are too small to close a connection for
    // (`db::release_after`).
    drop(client);
    Ok(records)
}

/// [`store`] for several files, variants or a large file: every row in one transaction.
async fn store_in_transaction(
    state: &AppState,
    client: &mut deadpool_postgres::Object,
    files: &[Upload],
    probes: &[(Probe, UploadFacts)],
    pipeline: Option<&serde_json::Value>,
    effective: &serde_json::Value,
    job: &JobFields,
) -> Result<Vec<Stored>, ApiError> {
    let tx = client.transaction().await.map_err(DbError::from)?;
    if !job.variants.is_empty() {
        let missing = variants::missing_presets(&tx, &job.variants).await?;
        if let Some(name) = missing.first() {
            return Err(ApiError::bad(
                "variants",
                format!("there is no preset named \"{name}\" (PUT /api/presets/{name} makes one)"),
            ));
        }
    }
    let mut records = Vec::with_capacity(files.len());
    for (file, (probe, facts)) in files.iter().zip(probes) {
        let new = Pending {
            file,
            probe,
            facts,
            pipeline,
        };
        records.push(store_file(state, &tx, &new, effective, job, Notify::AfterCommit).await?);
    }
    if !job.variants.is_empty() {
        for stored in &mut records {
            let record = &mut stored.record;
            variants::queue_variants(&tx, record.id, &job.variants, VariantFormat::Own).await?;
            for name in &job.variants {
                if !record.variants.iter().any(|v| &v.preset == name) {
                    record.variants.push(VariantSummary::pending(name));
                }
            }
            record.variants.sort_by(|a, b| a.preset.cmp(&b.preset));
        }
    }
    tx.commit().await.map_err(DbError::from)?;
    Ok(records)
}

/// When a stored file's notifications go out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Notify {
    /// Pipelined behind its own INSERT, which commits on its own (one file, no variants).
    WithInsert,
    /// After the upload's transaction commits.
    AfterCommit,
}

/// One file of an upload, probed and about to be stored.
struct Pending<'a> {
    file: &'a Upload,
    probe: &'a Probe,
    facts: &'a UploadFacts,
    /// The upload's own pipeline (`None`: the default).
    pipeline: Option<&'a serde_json::Value>,
}

/// Inserts one file as a pending job, or with `dedupe` answers it with an earlier image of the
/// same bytes and `effective` pipeline.
async fn store_file(
    state: &AppState,
    db: &impl images::CopyIn,
    new: &Pending<'_>,
    effective: &serde_json::Value,
    job: &JobFields,
    notify: Notify,
) -> Result<Stored, ApiError> {
    if job.dedupe {
        let earlier =
            images::find_duplicate(db, &new.facts.sha256, effective, &state.default_pipeline).await?;
        if let Some(record) = earlier {
            return Ok(Stored {
                record,
                duplicate: true,
                notified: false,
            });
        }
    }
    let exif = new.facts.exif_json();
    let row = NewImage {
        id: uuid::Uuid::new_v4(),
        data: &new.file.data,
        filename: new.file.filename.as_deref(),
        pipeline: new.pipeline,
        content_type: new.probe.format.content_type(),
        width: new.probe.width as i32,
        height: new.probe.height as i32,
        priority: job.priority,
        not_before: job.not_before,
        frames: i32::try_from(new.probe.frames).unwrap_or(i32::MAX),
        sha256: &new.facts.sha256,
        exif: exif.as_ref(),
        callback_url: job.callback_url.as_deref(),
    };
    if notify == Notify::AfterCommit {
        let record = if new.file.data.len() >= db::LARGE_BLOB_BYTES {
            images::copy_image(db, &row, &new.file.data).await?
        } else {
            images::insert_image(db, &row).await?
        };
        return Ok(Stored {
            record,
            duplicate: false,
            notified: false,
        });
    }
    let (record, sent) = images::insert_image_notified(db, &row).await;
    if let Err(e) = sent {
        tracing::warn!(error = %e, "could not notify workers of the upload; the sweep will find it");
    }
    Ok(Stored {
        record: record?,
        duplicate: false,
        notified: true,
    })
}

/// `202` with the image object for one file, `{"images": [...]}` for several; `200` when every
/// file was answered by an earlier upload (`dedupe=true`), since nothing new was queued.
fn answer(state: &AppState, mut stored: Vec<Stored>) -> Response {
    let location = stored
        .first()
        .map(|s| ImageObject::location(s.record.id))
        .unwrap_or_default();
    let status = if stored.iter().all(|s| s.duplicate) {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let object = |s: Stored| ImageObject::new(s.record, &state.default_pipeline);
    let body = if stored.len() == 1 {
        UploadAnswer::One(Box::new(object(stored.remove(0))))
    } else {
        UploadAnswer::Several(ImageBatch {
            images: stored.into_iter().map(object).collect(),
        })
    };
    (status, [(header::LOCATION, location)], Json(body)).into_response()
}

/// The fields of an upload that say when its job runs rather than what it does.
struct JobFields {
    /// −100..100, default 0.
    priority: i16,
    /// Not claimed before this time.
    not_before: Option<DateTime<Utc>>,
    /// `dedupe=true`: answer with an earlier upload of the same bytes and pipeline instead.
    dedupe: bool,
    /// Told (a signed webhook) when the image completes or fails.
    callback_url: Option<String>,
    /// `variants=thumb,hero`: presets to make variants of, queued with the image.
    variants: Vec<String>,
}

/// The most variants one upload may ask for per image.
const MAX_VARIANTS: usize = 16;

/// `variants`: comma-separated preset names, each checked; repeats are dropped.
fn parse_variants(value: &str) -> Result<Vec<String>, ApiError> {
    let mut names: Vec<String> = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let name = PresetName::parse(name).map_err(|e| ApiError::bad("variants", e))?;
        if !names.iter().any(|n| n == name.as_str()) {
            names.push(name.as_str().to_owned());
        }
    }
    if names.len() > MAX_VARIANTS {
        return Err(ApiError::bad(
            "variants",
            format!("at most {MAX_VARIANTS} presets per upload (got {})", names.len()),
        ));
    }
    Ok(names)
}

/// How far ahead `not_before` may be: further is more likely a typo than a plan.
const MAX_SCHEDULE_AHEAD_DAYS: i64 = 366;

impl JobFields {
    /// Takes `priority`, `not_before`, `dedupe`, `callback_url` and `variants` out of the fields (so the rest is the pipeline's). As
    /// with the operation fields, a field given twice (say in the query and the form) takes the
    /// last value.
    fn take(fields: &mut Vec<(String, String)>) -> Result<JobFields, ApiError> {
        let mut job = JobFields {
            priority: 0,
            not_before: None,
            dedupe: false,
            callback_url: None,
            variants: Vec::new(),
        };
        let mut error = None;
        fields.retain(|(key, value)| {
            let result = match key.as_str() {
                "priority" => parse_priority(value).map(|p| job.priority = p),
                "not_before" => parse_not_before(value).map(|t| job.not_before = Some(t)),
                "dedupe" => parse_bool("dedupe", value).map(|d| job.dedupe = d),
                "variants" => parse_variants(value).map(|v| job.variants = v),
                "callback_url" => crate::webhooks::send::check_url(value)
                    .map(|_| job.callback_url = Some(value.clone()))
                    .map_err(|e| ApiError::bad("callback_url", e)),
                _ => return true,
            };
            if let Err(e) = result {
                error.get_or_insert(e);
            }
            false
        });
        error.map_or(Ok(job), Err)
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::bad(name, format!("`{value}` is not true or false"))),
    }
}

fn parse_priority(value: &str) -> Result<i16, ApiError> {
    value
        .parse::<i16>()
        .ok()
        .filter(|p| (-100..=100).contains(p))
        .ok_or_else(|| {
            ApiError::bad(
                "priority",
                format!("`{value}` is not an integer from -100 to 100"),
            )
        })
}

fn parse_not_before(value: &str) -> Result<DateTime<Utc>, ApiError> {
    let at = DateTime::parse_from_rfc3339(value)
        .map_err(|_| {
            ApiError::bad(
                "not_before",
                format!("`{value}` is not an RFC 3339 time such as 2026-12-24T18:00:00Z"),
            )
        })?
        .with_timezone(&Utc);
    if at > Utc::now() + chrono::Duration::days(MAX_SCHEDULE_AHEAD_DAYS) {
        return Err(ApiError::bad(
            "not_before",
            format!("at most {MAX_SCHEDULE_AHEAD_DAYS} days ahead"),
        ));
    }
    Ok(at)
}

/// A `pipeline` JSON field, or flat operation fields, or neither (the worker's default).
fn parse_pipeline(fields: &[(String, String)]) -> Result<Option<Pipeline>, ApiError> {
    let json = fields.iter().find(|(k, _)| k == "pipeline");
    if let Some((_, text)) = json {
        if fields.len() > 1 {
            return Err(ApiError::bad(
                "pipeline",
                "send either a `pipeline` JSON field or operation fields, not both",
            ));
        }
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ApiError::bad("pipeline", format!("not valid JSON: {e}")))?;
        return Ok(Some(Pipeline::from_json(&value)?));
    }
    Ok(Pipeline::from_fields(
        fields.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )?)
}

/// Every watermark a pipeline draws must be a completed image now: the worker draws its
/// output. (One deleted or retried before the job runs fails that job, saying so.)
pub(super) async fn check_watermarks(state: &AppState, pipeline: &Pipeline) -> Result<(), ApiError> {
    let ids = pipeline.watermark_ids();
    if ids.is_empty() {
        return Ok(());
    }
    let client = state.pool.get().await?;
    let max_bytes = i64::try_from(state.config.max_upload_bytes).unwrap_or(i64::MAX);
    let completed = images::completed_among(&client, &ids, max_bytes).await?;
    match ids.iter().find(|id| !completed.contains(id)) {
        Some(missing) => Err(ApiError::bad(
            "watermark",
            format!(
                "{missing} is not a completed image: a watermark must name one (with an output of at most MAX_UPLOAD_BYTES)"
            ),
        )),
        None => Ok(()),
    }
}

/// Uploads of at most this many bytes in all, in a format whose header the `image` crate reads,
/// are probed and hashed on the request's own task: about 0.1 ms of work for 100 KB (SHA-256
/// most of it), about what handing it to the blocking pool and back cost in thread wake-ups
/// (perf of the 100 KB ingest: spawn_blocking and its futex calls ~10 % of the API's CPU).
const INLINE_PROBE_BYTES: usize = 128 * 1024;

/// Sniffs and header-checks every file on a blocking thread (TIFF and GIF headers can take
/// a scan), or inline for a small upload ([`INLINE_PROBE_BYTES`]); the first bad file refuses
/// the whole request, so nothing is half-stored.
async fn probe_all(state: &AppState, files: &[Upload]) -> Result<Vec<(Probe, UploadFacts)>, ApiError> {
    let limits = state.config.limits();
    let datas: Vec<Bytes> = files.iter().map(|f| f.data.clone()).collect();
    let names: Vec<Option<String>> = files.iter().map(|f| f.filename.clone()).collect();
    // The hash and EXIF only of files that pass the probe: nothing is read from the rest.
    let work = move || {
        datas
            .iter()
            .map(|d| imaging::probe(d, &limits).map(|p| (p, UploadFacts::read(d))))
            .collect::<Vec<_>>()
    };
    let small = files.iter().map(|f| f.data.len()).sum::<usize>() <= INLINE_PROBE_BYTES
        && files.iter().all(|f| {
            matches!(
                imaging::Format::sniff(&f.data),
                Some(Format::Jpeg | Format::Png | Format::Gif | Format::Webp | Format::Bmp)
            )
        });
    // `imaging::probe` turns decoder panics into errors; should anything else panic, the
    // upload is refused as unreadable rather than answered `500`.
    let unreadable = || ApiError::from(ImagingError::Corrupt("the header could not be parsed".into()));
    let results = if small {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).map_err(|_| unreadable())?
    } else {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| unreadable())?
    };
    let several = files.len() > 1;
    results
        .into_iter()
        .zip(names)
        .map(|(r, name)| {
            r.map_err(|e| {
                let e = ApiError::from(e);
                match (several, name) {
                    (true, Some(name)) => prefix_error(e, &name),
                    _ => e,
                }
            })
        })
        .collect()
}

fn prefix_error(e: ApiError, name: &str) -> ApiError {
    match e {
        ApiError::UnsupportedMedia(m) => ApiError::UnsupportedMedia(format!("{name}: {m}")),
        ApiError::Unprocessable { code, message } => ApiError::Unprocessable {
            code,
            message: format!("{name}: {message}"),
        },
        other => other,
    }
}
