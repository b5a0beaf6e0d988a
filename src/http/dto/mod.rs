//! The HTTP wire types: every JSON body the API sends (here), and the schemas that exist only to
//! document requests (`requests`). Handlers build these; `openapi` lists them. Webhooks
//! (`webhooks`) and presets (`presets`) have files of their own.

mod presets;
mod requests;
mod webhooks;

pub use presets::{PresetList, PresetObject, PresetPipelineBody};
pub use requests::{Operations, UploadBytes, UploadForm, MAX_FILES};
pub use webhooks::{AttemptObject, DeliveryList, DeliveryObject, WebhookEvent};

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::images::{Facts, ImageRecord, Media, VariantSummary};
pub use crate::imaging::facts::ExifFacts;
use crate::states::JobStatus;

/// The image object of SPEC §HTTP API.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageObject {
    pub id: Uuid,
    pub status: JobStatus,
    pub filename: Option<String>,
    /// Why it failed, for people; `null` unless `failed`.
    pub error: Option<String>,
    /// Why it failed, for machines: `corrupt_image`, `image_too_large`, `unsupported_media_type`,
    /// `invalid_pipeline`, `encode_failed`, `processing_crashed`, `worker_lost`, `job_timeout`,
    /// `watermark_unavailable` (the database could not give the watermark images) or
    /// `payload_too_large` (a row stored by SQL over `MAX_UPLOAD_BYTES`).
    pub error_code: Option<String>,
    pub attempts: i32,
    pub uploaded_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub processed_at: Option<DateTime<Utc>>,
    /// The effective pipeline in its JSON form: the upload's own, or `DEFAULT_PIPELINE` for an
    /// upload without operations (and a row a SQL INSERT made without one).
    #[schema(value_type = Object)]
    pub pipeline: serde_json::Value,
    /// −100..100: higher is claimed first; among equals, the row runnable longest.
    #[schema(minimum = -100, maximum = 100)]
    pub priority: i16,
    /// Not claimed before this time (`null`: as soon as a worker is free).
    pub not_before: Option<DateTime<Utc>>,
    /// Where this image's webhooks go (the upload's `callback_url`); absent when none was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    pub original: OriginalObject,
    pub processed: Option<MediaObject>,
    /// The image's variants by preset name (`{}` when none was asked for): queued by the
    /// upload's `variants`, a first request of a variant's `url`, or a SQL INSERT.
    pub variants: std::collections::BTreeMap<String, VariantObject>,
    pub links: Links,
}

/// One variant: the image processed with a preset (SPEC "Variants").
#[derive(Debug, Serialize, ToSchema)]
pub struct VariantObject {
    pub status: JobStatus,
    pub content_type: Option<String>,
    pub bytes: Option<i64>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    /// Its bytes once completed (queues it when it is not made yet).
    pub url: String,
    /// Why it failed (`null` unless failed or cancelled).
    pub error: Option<String>,
    /// `unknown_preset`, `preset_deleted`, `invalid_pipeline`, or any image error code.
    pub error_code: Option<String>,
}

impl VariantObject {
    /// The variant's route under its image.
    pub fn url(id: Uuid, preset: &str) -> String {
        format!("/api/images/{id}/variants/{preset}")
    }

    pub fn new(id: Uuid, v: VariantSummary) -> (String, VariantObject) {
        let url = VariantObject::url(id, &v.preset);
        (
            v.preset,
            VariantObject {
                status: v.status,
                content_type: v.content_type,
                bytes: v.bytes,
                width: v.width,
                height: v.height,
                url,
                error: v.error,
                error_code: v.error_code,
            },
        )
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MediaObject {
    pub content_type: Option<String>,
    pub bytes: Option<i64>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    /// More than 1 for an animation.
    pub frames: Option<i32>,
}

/// The upload: type, size, and its facts (SPEC "Facts"), each `null` until known: the API
/// reads `sha256`, `exif` and `frames` at upload; the worker adds `blurhash` and
/// `dominant_color` with the result (and the rest, for a row a SQL INSERT made).
#[derive(Debug, Serialize, ToSchema)]
pub struct OriginalObject {
    pub content_type: Option<String>,
    pub bytes: Option<i64>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub frames: Option<i32>,
    /// Hex SHA-256 of the uploaded bytes (the key of `dedupe=true`).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sha256: Option<String>,
    /// A 4×3-component BlurHash of the image as shown, for a placeholder while it loads.
    pub blurhash: Option<String>,
    /// The most common colour, `#rrggbb`.
    #[schema(pattern = "^#[0-9a-f]{6}$")]
    pub dominant_color: Option<String>,
    /// Camera facts from EXIF (absent keys omitted; `null` when the file has none). GPS
    /// coordinates are never returned: only `has_gps`.
    #[schema(value_type = Option<ExifFacts>)]
    pub exif: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Links {
    #[serde(rename = "self")]
    pub self_: String,
    pub original: String,
    pub processed: String,
    pub thumbnail: String,
}

impl From<Media> for MediaObject {
    fn from(m: Media) -> Self {
        MediaObject {
            content_type: m.content_type,
            bytes: m.bytes,
            width: m.width,
            height: m.height,
            frames: m.frames,
        }
    }
}

impl OriginalObject {
    fn new(m: Media, facts: Facts) -> OriginalObject {
        OriginalObject {
            content_type: m.content_type,
            bytes: m.bytes,
            width: m.width,
            height: m.height,
            frames: m.frames,
            sha256: facts.sha256,
            blurhash: facts.blurhash,
            dominant_color: facts.dominant_color,
            exif: facts.exif,
        }
    }
}

impl ImageObject {
    /// The image's URL, for `Location` headers.
    pub fn location(id: Uuid) -> String {
        format!("/api/images/{id}")
    }
}

impl ImageObject {
    /// The API's view of a row. `default_pipeline` (`DEFAULT_PIPELINE` as JSON) stands in for
    /// a row without a pipeline of its own.
    pub fn new(r: ImageRecord, default_pipeline: &serde_json::Value) -> Self {
        let base = ImageObject::location(r.id);
        ImageObject {
            id: r.id,
            processed: (r.status == JobStatus::Completed).then(|| r.processed.into()),
            status: r.status,
            filename: r.filename,
            error: r.error,
            error_code: r.error_code,
            attempts: r.attempts,
            uploaded_at: r.uploaded_at,
            started_at: r.started_at,
            processed_at: r.processed_at,
            pipeline: r
                .pipeline
                .filter(|p| !p.is_null())
                .unwrap_or_else(|| default_pipeline.clone()),
            priority: r.priority,
            not_before: r.not_before,
            callback_url: r.callback_url,
            original: OriginalObject::new(r.original, r.facts),
            variants: r
                .variants
                .into_iter()
                .map(|v| VariantObject::new(r.id, v))
                .collect(),
            links: Links {
                original: format!("{base}/original"),
                processed: format!("{base}/processed"),
                thumbnail: format!("{base}/thumbnail"),
                self_: base,
            },
        }
    }
}

/// A variant not made yet (`202` from its route).
#[derive(Debug, Serialize, ToSchema)]
pub struct VariantStatus {
    /// The image's id.
    pub id: Uuid,
    pub preset: String,
    /// The negotiated format of a `format: auto` preset (`avif`, `webp`); absent for its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// `pending` or `processing`.
    pub status: JobStatus,
    /// Where its bytes will be (this route).
    pub url: String,
}

/// `POST /api/images/{id}/signed-url`'s body (read by hand in `http::variants`; the derive
/// documents it, closed to other keys as the reader is).
#[derive(Debug, ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SignedUrlRequest {
    /// A preset name.
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    pub preset: String,
}

/// A signed variant URL.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedUrl {
    /// `/v/{sig}/{id}/{preset}`, relative to this service; needs no token.
    pub url: String,
}

/// Raw bytes of an image.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Binary(#[allow(dead_code)] Vec<u8>);

/// A page of images, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageList {
    pub images: Vec<ImageObject>,
    /// Pass as `?before=` for the next page; `null` on the last page.
    #[schema(value_type = Option<String>)]
    pub next: Option<Cursor>,
}

/// The answer to an upload of several files.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageBatch {
    pub images: Vec<ImageObject>,
}

/// The answer to an upload: the image object for one file, `{"images": [...]}` for several.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum UploadAnswer {
    One(Box<ImageObject>),
    Several(ImageBatch),
}

/// Counts per status and recent throughput, read from counters that triggers keep exact
/// (`sql/0008_table_health.sql`), so the answer costs the same at any table size.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    pub counts: StatusCounts,
    /// `pending` + `processing`.
    pub queue_depth: i64,
    /// Jobs completed in the last 60 s (to the second), counted as they complete: a row
    /// deleted or retried since still counts, a row inserted by SQL as `completed` does not.
    pub completed_last_minute: i64,
    /// How long the longest-waiting runnable pending image has waited, in seconds (0 when
    /// none): a scheduled one counts from its `not_before`, a backed-off one from the end of
    /// its backoff. Alert on it rising.
    pub oldest_pending_seconds: f64,
    /// The last 60 minutes, oldest first, the current (partial) minute last: jobs that ended
    /// `completed` and `failed` in each (every minute present, zeros included).
    pub history: Vec<HistoryMinute>,
    pub max_upload_bytes: u64,
    pub max_pixels: u64,
}

/// One minute of [`Stats::history`].
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryMinute {
    /// The minute's start (RFC 3339, UTC).
    pub minute: DateTime<Utc>,
    /// Status changes into `completed` in that minute.
    pub completed: i64,
    /// Status changes into `failed` in that minute (by a worker, the lease sweep or SQL).
    pub failed: i64,
}

/// Rows per status, exact (kept by triggers on every insert, status change, delete and
/// truncate, whoever makes it).
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct StatusCounts {
    pub pending: i64,
    pub processing: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
}

impl StatusCounts {
    /// Counts from `(status, rows)` pairs; a status with no rows counts 0.
    pub fn from_rows(rows: impl IntoIterator<Item = (JobStatus, i64)>) -> StatusCounts {
        let mut counts = StatusCounts::default();
        for (status, n) in rows {
            let slot = match status {
                JobStatus::Pending => &mut counts.pending,
                JobStatus::Processing => &mut counts.processing,
                JobStatus::Completed => &mut counts.completed,
                JobStatus::Failed => &mut counts.failed,
                JobStatus::Cancelled => &mut counts.cancelled,
            };
            *slot = n;
        }
        counts
    }

    /// Rows still in the queue.
    pub fn queue_depth(&self) -> i64 {
        self.pending + self.processing
    }
}

/// A liveness or readiness answer.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct HealthAnswer {
    /// `ok`, `threads_stuck`, `ready`, `schema_outdated`, `database_unavailable` or
    /// `database_timeout`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `/healthz` of a process running a worker: threads still busy with a timed-out job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stuck_threads: Option<u32>,
}

/// One Server-Sent Event of `GET /api/events`, as a client's EventSource sees it (a schema for
/// the document only: the stream itself is `text/event-stream` lines).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SseEvent {
    /// `image` for a status change, `variant` for a variant's, `resync` when changes may have
    /// been missed (refetch).
    #[schema(pattern = "^(image|variant|resync)$")]
    event: String,
    /// Per-process sequence number (on `image` events).
    id: Option<String>,
    /// JSON text: `{"id": "<uuid>", "status": "<status or deleted>"}` for `image`,
    /// `{"id", "preset", "status"}` (and `"format"` for a negotiated one) for `variant`, `{}`
    /// or `{"missed": n}` for `resync`.
    data: String,
}

/// A keyset cursor for `GET /api/images`: the last row's upload time (µs) and id. Opaque to
/// clients, who only pass back the `next` they were given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub uploaded_at: DateTime<Utc>,
    pub id: Uuid,
}

impl From<&ImageRecord> for Cursor {
    fn from(r: &ImageRecord) -> Self {
        Cursor {
            uploaded_at: r.uploaded_at,
            id: r.id,
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.uploaded_at.timestamp_micros(), self.id.simple())
    }
}

impl Serialize for Cursor {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Text that is not a cursor this server made.
#[derive(Debug)]
pub struct NotACursor;

impl FromStr for Cursor {
    type Err = NotACursor;

    /// Exactly what the `before` parameter's documented pattern says: up to 16 decimal digits of
    /// microseconds (until the year 2286), `_`, and the id as 32 lowercase hex digits.
    fn from_str(c: &str) -> Result<Self, Self::Err> {
        let (micros, id) = c.split_once('_').ok_or(NotACursor)?;
        let digits = |s: &str, max: usize, ok: fn(&u8) -> bool| {
            !s.is_empty() && s.len() <= max && s.as_bytes().iter().all(ok)
        };
        if !digits(micros, 16, u8::is_ascii_digit)
            || id.len() != 32
            || !digits(id, 32, |b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        {
            return Err(NotACursor);
        }
        Ok(Cursor {
            uploaded_at: micros
                .parse()
                .ok()
                .and_then(DateTime::from_timestamp_micros)
                .ok_or(NotACursor)?,
            id: Uuid::parse_str(id).map_err(|_| NotACursor)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let c = Cursor {
            uploaded_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).expect("time"),
            id: Uuid::from_u128(0x1234),
        };
        assert_eq!(c.to_string().parse::<Cursor>().ok(), Some(c));
        for bad in [
            "",
            "_",
            "1_",
            "x_00000000000000000000000000001234",
            "1_zz",
            "99999999999999999999_0",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn counts_fill_every_status_and_sum_the_queue() {
        let c = StatusCounts::from_rows([(JobStatus::Pending, 2), (JobStatus::Processing, 3)]);
        assert_eq!((c.completed, c.failed, c.queue_depth()), (0, 0, 5));
    }
}
