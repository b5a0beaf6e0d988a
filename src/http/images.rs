//! Image resources: status (with long-poll), list, retry, delete, stats.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::dto::{Cursor, HistoryMinute, ImageList, ImageObject, Stats, StatusCounts};
use super::error::ApiError;
use super::error::ErrorBody;
use super::extract::{ImageId, ListParams, Wait};
use super::legacy;
use super::state::AppState;
use crate::db::images::{self, ImageRecord};
use crate::db::{control, stats};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, super::upload::upload))
        .routes(routes!(status, delete))
        .routes(routes!(retry))
        .routes(routes!(cancel))
        .routes(routes!(stats))
        .routes(legacy::alias("/status/{id}", routes!(status)))
}

/// `GET /api/images/{id}`; with `?wait=N`, held while pending/processing until the status
/// changes or N seconds pass.
#[utoipa::path(get, path = "/api/images/{id}", tag = "images",
    params(("id" = String, Path, description = "image id (UUID)"), Wait),
    responses(
        (status = 200, description = "the image object", body = ImageObject),
        (status = 400, description = "bad `wait`", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "unknown or malformed id", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn status(
    State(state): State<AppState>,
    ImageId(id): ImageId,
    Wait { wait }: Wait,
) -> Result<Json<ImageObject>, ApiError> {
    // Subscribe before reading, so a change between the read and the wait is not missed.
    let mut changes = state.events.subscribe();
    let record = fetch(&state, id).await?;
    if wait.is_zero() || !record.status.is_active() {
        return Ok(Json(ImageObject::new(record, &state.default_pipeline)));
    }
    let initial = record.status.as_str();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let change = tokio::select! {
            _ = state.shutdown.cancelled() => break,
            change = tokio::time::timeout_at(deadline, changes.recv()) => change,
        };
        match change {
            Err(_) => break,
            Ok(Ok(event)) if event.id == id && event.preset.is_none() && event.status != initial => break,
            Ok(Ok(_)) => continue,
            // Lagged or closed: re-read the row rather than guess.
            Ok(Err(_)) => break,
        }
    }
    Ok(Json(ImageObject::new(
        fetch(&state, id).await?,
        &state.default_pipeline,
    )))
}

async fn fetch(state: &AppState, id: Uuid) -> Result<ImageRecord, ApiError> {
    let client = state.pool.get().await?;
    images::get_image(&client, id).await?.ok_or(ApiError::NotFound)
}

/// `GET /api/images`: newest first, keyset-paginated.
#[utoipa::path(get, path = "/api/images", tag = "images", params(ListParams),
    responses(
        (status = 200, description = "a page of images", body = ImageList),
        (status = 400, description = "bad `status`, `limit` or `before`", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn list(State(state): State<AppState>, q: ListParams) -> Result<Json<ImageList>, ApiError> {
    let client = state.pool.get().await?;
    let before = q.before.map(|c| (c.uploaded_at, c.id));
    let rows = images::list_images(&client, q.status, before, q.limit).await?;
    let next = (rows.len() as i64 == q.limit)
        .then(|| rows.last().map(Cursor::from))
        .flatten();
    let images: Vec<ImageObject> = rows
        .into_iter()
        .map(|r| ImageObject::new(r, &state.default_pipeline))
        .collect();
    Ok(Json(ImageList { images, next }))
}

/// `POST /api/images/{id}/retry`: a failed, completed or cancelled image goes back to pending.
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
async fn retry(State(state): State<AppState>, ImageId(id): ImageId) -> Result<Response, ApiError> {
    let client = state.pool.get().await?;
    let record = images::retry_image(&client, id).await?;
    changed_or_conflict(
        &state,
        &client,
        id,
        record,
        "only failed, completed or cancelled images can be retried",
    )
    .await
}

/// `202` with the changed image, or, when the statement matched nothing, `404` for an unknown
/// image and `409` naming its status for one the change does not apply to.
async fn changed_or_conflict(
    state: &AppState,
    client: &deadpool_postgres::Object,
    id: Uuid,
    changed: Option<ImageRecord>,
    rule: &str,
) -> Result<Response, ApiError> {
    match changed {
        Some(record) => {
            let location = ImageObject::location(record.id);
            let body = Json(ImageObject::new(record, &state.default_pipeline));
            Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], body).into_response())
        }
        None => {
            let current = images::get_image(client, id).await?.ok_or(ApiError::NotFound)?;
            Err(ApiError::Conflict {
                message: format!("{rule}; this one is {}", current.status),
                status: current.status,
            })
        }
    }
}

/// `POST /api/images/{id}/cancel`: a pending or processing image becomes `cancelled`; a worker
/// running it stops at its next safe point and its result is dropped.
#[utoipa::path(post, path = "/api/images/{id}/cancel", tag = "images",
    params(("id" = String, Path, description = "image id (UUID)")),
    responses(
        (status = 202, description = "cancelled (a worker running it is told to stop)", body = ImageObject,
            headers(("Location" = String, description = "the image's URL"))),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "unknown or malformed id", body = ErrorBody),
        (status = 409, description = "already finished (completed, failed or cancelled); `status` says which",
            body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn cancel(State(state): State<AppState>, ImageId(id): ImageId) -> Result<Response, ApiError> {
    let client = state.pool.get().await?;
    let record = control::cancel_image(&client, id).await?;
    if record.is_some() {
        crate::metrics::cancelled();
        // After the cancel committed: the worker checks its claim against the row.
        if let Err(e) = control::notify_cancel(&client, id).await {
            tracing::warn!(error = %e, image_id = %id, "notifying the cancel failed; the worker's next heartbeat finds it");
        }
    }
    changed_or_conflict(
        &state,
        &client,
        id,
        record,
        "only pending or processing images can be cancelled",
    )
    .await
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
async fn delete(State(state): State<AppState>, ImageId(id): ImageId) -> Result<StatusCode, ApiError> {
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
    let row = stats::stats(&client).await?;
    let history = stats::stats_history(&client).await?;
    let counts = StatusCounts::from_rows(row.counts);
    Ok(Json(Stats {
        queue_depth: counts.queue_depth(),
        counts,
        completed_last_minute: row.recent,
        oldest_pending_seconds: row.oldest_pending_seconds,
        history: history
            .into_iter()
            .map(|(minute, completed, failed)| HistoryMinute {
                minute,
                completed,
                failed,
            })
            .collect(),
        max_upload_bytes: state.config.max_upload_bytes,
        max_pixels: state.config.max_pixels,
    }))
}
