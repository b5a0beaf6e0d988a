//! Image resources: status (with long-poll), list, retry, delete, stats.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::error::ErrorBody;
use super::openapi::{ImageList, Stats, StatusCounts};
use super::{ApiError, AppState, MAX_WAIT};
use crate::db::images::{self, ImageRecord, Media};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, super::upload::upload))
        .routes(routes!(status, delete))
        .routes(routes!(retry))
        .routes(routes!(stats))
        .routes(routes!(legacy_status))
}

/// The image object of SPEC §HTTP API.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageObject {
    pub id: Uuid,
    pub status: String,
    pub filename: Option<String>,
    pub error: Option<String>,
    pub attempts: i32,
    pub uploaded_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub processed_at: Option<DateTime<Utc>>,
    /// The pipeline in its JSON form; `null` means `DEFAULT_PIPELINE`.
    #[schema(value_type = Option<Object>)]
    pub pipeline: Option<serde_json::Value>,
    pub original: MediaObject,
    pub processed: Option<MediaObject>,
    pub links: Links,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MediaObject {
    pub content_type: Option<String>,
    pub bytes: Option<i64>,
    pub width: Option<i32>,
    pub height: Option<i32>,
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
        }
    }
}

impl From<ImageRecord> for ImageObject {
    fn from(r: ImageRecord) -> Self {
        let base = format!("/api/images/{}", r.id);
        ImageObject {
            id: r.id,
            processed: (r.status == "completed").then(|| r.processed.into()),
            status: r.status,
            filename: r.filename,
            error: r.error,
            attempts: r.attempts,
            uploaded_at: r.uploaded_at,
            started_at: r.started_at,
            processed_at: r.processed_at,
            pipeline: r.pipeline,
            original: r.original.into(),
            links: Links {
                original: format!("{base}/original"),
                processed: format!("{base}/processed"),
                thumbnail: format!("{base}/thumbnail"),
                self_: base,
            },
        }
    }
}

/// Parses a path id; a malformed one is simply not found.
pub fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct WaitQuery {
    /// Seconds (0–60): while pending or processing, hold the answer until the status changes.
    #[param(value_type = Option<f64>, minimum = 0, maximum = 60)]
    wait: Option<String>,
}

/// `GET /api/images/{id}`; with `?wait=N`, held while pending/processing until the status
/// changes or N seconds pass.
#[utoipa::path(get, path = "/api/images/{id}", tag = "images",
    params(("id" = String, Path, description = "image id (UUID)"), WaitQuery),
    responses(
        (status = 200, description = "the image object", body = ImageObject),
        (status = 400, description = "bad `wait`", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "unknown or malformed id", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Result<Json<ImageObject>, ApiError> {
    let id = parse_id(&id)?;
    let wait = match q.wait.as_deref() {
        None | Some("") => Duration::ZERO,
        Some(w) => {
            let secs: f64 = w
                .parse()
                .map_err(|_| ApiError::bad("wait", "must be a number of seconds"))?;
            if !(0.0..=MAX_WAIT.as_secs_f64()).contains(&secs) {
                return Err(ApiError::bad(
                    "wait",
                    format!("must be between 0 and {}", MAX_WAIT.as_secs()),
                ));
            }
            Duration::from_secs_f64(secs)
        }
    };
    // Subscribe before reading, so a change between the read and the wait is not missed.
    let mut changes = state.events.subscribe();
    let record = fetch(&state, id).await?;
    if wait.is_zero() || !matches!(record.status.as_str(), "pending" | "processing") {
        return Ok(Json(record.into()));
    }
    let initial = record.status.clone();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let change = tokio::select! {
            _ = state.shutdown.cancelled() => break,
            change = tokio::time::timeout_at(deadline, changes.recv()) => change,
        };
        match change {
            Err(_) => break,
            Ok(Ok(event)) if event.id == id && event.status != initial => break,
            Ok(Ok(_)) => continue,
            // Lagged or closed: re-read the row rather than guess.
            Ok(Err(_)) => break,
        }
    }
    Ok(Json(fetch(&state, id).await?.into()))
}

/// The original design's `GET /status/{id}`: the same as `GET /api/images/{id}`.
#[utoipa::path(get, path = "/status/{id}", tag = "legacy",
    params(("id" = String, Path, description = "image id (UUID)"), WaitQuery),
    responses(
        (status = 200, description = "the image object", body = ImageObject),
        (status = 400, description = "bad `wait`", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "unknown or malformed id", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn legacy_status(
    state: State<AppState>,
    id: Path<String>,
    q: Query<WaitQuery>,
) -> Result<Json<ImageObject>, ApiError> {
    status(state, id, q).await
}

async fn fetch(state: &AppState, id: Uuid) -> Result<ImageRecord, ApiError> {
    let client = state.pool.get().await?;
    images::get_image(&client, id).await?.ok_or(ApiError::NotFound)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only images with this status.
    #[param(value_type = Option<String>, pattern = "^(pending|processing|completed|failed)$")]
    status: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// The `next` cursor of the previous page.
    before: Option<String>,
}

/// Most a page can hold.
const MAX_PAGE: i64 = 200;

/// `GET /api/images`: newest first, keyset-paginated.
#[utoipa::path(get, path = "/api/images", tag = "images", params(ListQuery),
    responses(
        (status = 200, description = "a page of images", body = ImageList),
        (status = 400, description = "bad `status`, `limit` or `before`", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<ImageList>, ApiError> {
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s @ ("pending" | "processing" | "completed" | "failed")) => Some(s),
        Some(_) => {
            return Err(ApiError::bad(
                "status",
                "must be pending, processing, completed or failed",
            ))
        }
    };
    let limit = match q.limit.as_deref() {
        None | Some("") => 50,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(ApiError::bad(
                    "limit",
                    format!("must be between 1 and {MAX_PAGE}"),
                ))
            }
        },
    };
    let before = match q.before.as_deref() {
        None | Some("") => None,
        Some(c) => Some(parse_cursor(c).ok_or_else(|| ApiError::bad("before", "not a cursor from `next`"))?),
    };
    let client = state.pool.get().await?;
    let rows = images::list_images(&client, status, before, limit).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(cursor))
        .flatten();
    let images: Vec<ImageObject> = rows.into_iter().map(ImageObject::from).collect();
    Ok(Json(ImageList { images, next }))
}

/// Opaque to clients: the last row's upload time (µs) and id.
fn cursor(r: &ImageRecord) -> String {
    format!("{}_{}", r.uploaded_at.timestamp_micros(), r.id.simple())
}

fn parse_cursor(c: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let (micros, id) = c.split_once('_')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        Uuid::parse_str(id).ok()?,
    ))
}

/// `POST /api/images/{id}/retry`: a failed or completed image goes back to pending.
#[utoipa::path(post, path = "/api/images/{id}/retry", tag = "images",
    params(("id" = String, Path, description = "image id (UUID)")),
    responses(
        (status = 202, description = "pending again", body = ImageObject,
            headers(("Location" = String, description = "the image's URL"))),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "unknown or malformed id", body = ErrorBody),
        (status = 409, description = "pending or processing; `status` says which", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn retry(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let client = state.pool.get().await?;
    match images::retry_image(&client, id).await? {
        Some(record) => {
            let location = record_location(&record);
            let body = Json(ImageObject::from(record));
            Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], body).into_response())
        }
        None => {
            let current = images::get_image(&client, id).await?.ok_or(ApiError::NotFound)?;
            Err(ApiError::Conflict {
                message: format!(
                    "only failed or completed images can be retried; this one is {}",
                    current.status
                ),
                status: current.status,
            })
        }
    }
}

pub fn record_location(r: &ImageRecord) -> String {
    format!("/api/images/{}", r.id)
}

/// `DELETE /api/images/{id}`.
#[utoipa::path(delete, path = "/api/images/{id}", tag = "images",
    params(("id" = String, Path, description = "image id (UUID)")),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "unknown or malformed id", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    let client = state.pool.get().await?;
    if images::delete_image(&client, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

/// `GET /api/stats`: counts per status, queue depth, throughput.
#[utoipa::path(get, path = "/api/stats", tag = "images",
    responses(
        (status = 200, description = "counts and limits", body = Stats),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn stats(State(state): State<AppState>) -> Result<Json<Stats>, ApiError> {
    let client = state.pool.get().await?;
    let (counts, recent) = images::stats(&client).await?;
    let mut by_status = StatusCounts {
        pending: 0,
        processing: 0,
        completed: 0,
        failed: 0,
    };
    for (status, n) in counts {
        match status.as_str() {
            "pending" => by_status.pending = n,
            "processing" => by_status.processing = n,
            "completed" => by_status.completed = n,
            "failed" => by_status.failed = n,
            _ => {}
        }
    }
    Ok(Json(Stats {
        queue_depth: by_status.pending + by_status.processing,
        counts: by_status,
        completed_last_minute: recent,
        max_upload_bytes: state.config.max_upload_bytes,
        max_pixels: state.config.max_pixels,
    }))
}
