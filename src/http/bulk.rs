//! Bulk actions: `POST /api/images/retry` and `POST /api/images/delete` with a JSON filter
//! `{"status", "before", "ids"}` (at least one key), at most [`BULK_LIMIT`] rows per call.

use axum::body::Body;
use axum::extract::{FromRequest, Request, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::state::AppState;
use crate::db::control::{self, BulkFilter, BULK_LIMIT};
use crate::states::JobStatus;

/// Largest bulk request body: room for [`BULK_LIMIT`] ids (about 39 bytes each in JSON).
pub const MAX_BULK_BODY_BYTES: u64 = 512 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(retry_many))
        .routes(routes!(delete_many))
}

/// Which images a bulk action takes. Every key given must match; at least one is required.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // the wire shape for the OpenAPI document; parsed by hand (`parse_filter`)
pub struct BulkFilterBody {
    /// Only images in this status (retry: `failed`, `completed` or `cancelled`).
    status: Option<JobStatus>,
    /// Only images uploaded before this instant (RFC 3339).
    before: Option<DateTime<Utc>>,
    /// Only these images (at most 10 000 ids).
    #[schema(max_items = 10000)]
    ids: Option<Vec<Uuid>>,
}

/// The answer to a bulk retry.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkRetried {
    /// Images put back in the queue by this call.
    pub retried: u64,
    /// The call stopped at its limit of 10 000 rows: call again for the rest.
    pub more: bool,
}

/// The answer to a bulk delete.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkDeleted {
    /// Images deleted by this call.
    pub deleted: u64,
    /// The call stopped at its limit of 10 000 rows: call again for the rest.
    pub more: bool,
}

/// `POST /api/images/retry`: finished images matching the filter go back to pending.
#[utoipa::path(post, path = "/api/images/retry", tag = "images",
    request_body(content = BulkFilterBody, content_type = "application/json",
        description = "e.g. `{\"status\": \"failed\"}`; at least one of `status`, `before`, `ids`"),
    responses(
        (status = 200, description = "how many were retried", body = BulkRetried),
        (status = 400, description = "bad filter; `param` names the key", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 413, description = "body over 512 KiB", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn retry_many(
    State(state): State<AppState>,
    Filter(filter): Filter,
) -> Result<Json<BulkRetried>, ApiError> {
    if let Some(status) = filter.status.filter(|s| s.is_active()) {
        return Err(ApiError::bad(
            "status",
            format!("only failed, completed or cancelled images can be retried, not {status}"),
        ));
    }
    let client = state.pool.get().await?;
    let retried = control::bulk_retry(&client, &filter).await?;
    tracing::info!(retried, "bulk retry");
    Ok(Json(BulkRetried {
        retried,
        more: retried as i64 == BULK_LIMIT,
    }))
}

/// `POST /api/images/delete`: images matching the filter are deleted, whatever their status.
#[utoipa::path(post, path = "/api/images/delete", tag = "images",
    request_body(content = BulkFilterBody, content_type = "application/json",
        description = "e.g. `{\"status\": \"failed\", \"before\": \"2026-01-01T00:00:00Z\"}`; at least one key"),
    responses(
        (status = 200, description = "how many were deleted", body = BulkDeleted),
        (status = 400, description = "bad filter; `param` names the key", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 413, description = "body over 512 KiB", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn delete_many(
    State(state): State<AppState>,
    Filter(filter): Filter,
) -> Result<Json<BulkDeleted>, ApiError> {
    let client = state.pool.get().await?;
    let deleted = control::bulk_delete(&client, &filter).await?;
    tracing::info!(deleted, "bulk delete");
    Ok(Json(BulkDeleted {
        deleted,
        more: deleted as i64 == BULK_LIMIT,
    }))
}

/// A bulk filter read from a JSON body of at most [`MAX_BULK_BODY_BYTES`].
pub struct Filter(pub BulkFilter);

impl<S: Send + Sync> FromRequest<S> for Filter {
    type Rejection = ApiError;

    async fn from_request(request: Request<Body>, _: &S) -> Result<Self, ApiError> {
        let limit = MAX_BULK_BODY_BYTES;
        let bytes = axum::body::to_bytes(request.into_body(), limit as usize)
            .await
            .map_err(|_| ApiError::BodyTooLarge { limit })?;
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|e| ApiError::bad("body", format!("not JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(ApiError::bad(
                "body",
                "expected a JSON object such as {\"status\": \"failed\"}",
            ));
        };
        parse_filter(map).map(Filter)
    }
}

fn parse_filter(map: Map<String, Value>) -> Result<BulkFilter, ApiError> {
    if map.is_empty() {
        return Err(ApiError::bad(
            "body",
            "give at least one of `status`, `before` and `ids` (an empty filter would take every image)",
        ));
    }
    let mut filter = BulkFilter::default();
    for (key, value) in map {
        match key.as_str() {
            "status" => {
                let word = value
                    .as_str()
                    .ok_or_else(|| ApiError::bad("status", "expected a string"))?;
                let status = word
                    .parse::<JobStatus>()
                    .map_err(|_| ApiError::bad("status", format!("expected {}", JobStatus::choices())))?;
                filter.status = Some(status);
            }
            "before" => {
                let text = value
                    .as_str()
                    .ok_or_else(|| ApiError::bad("before", "expected an RFC 3339 time string"))?;
                let at = DateTime::parse_from_rfc3339(text).map_err(|e| {
                    ApiError::bad(
                        "before",
                        format!("expected an RFC 3339 time such as 2026-01-31T12:00:00Z: {e}"),
                    )
                })?;
                filter.before = Some(at.with_timezone(&Utc));
            }
            "ids" => filter.ids = Some(parse_ids(&value)?),
            other => {
                let other: String = other.chars().take(64).collect();
                return Err(ApiError::bad(
                    &other,
                    "unknown filter key; use `status`, `before` or `ids`",
                ));
            }
        }
    }
    Ok(filter)
}

fn parse_ids(value: &Value) -> Result<Vec<Uuid>, ApiError> {
    let items = value
        .as_array()
        .ok_or_else(|| ApiError::bad("ids", "expected an array of image ids"))?;
    if items.len() as i64 > BULK_LIMIT {
        return Err(ApiError::bad(
            "ids",
            format!("at most {BULK_LIMIT} ids per call, got {}", items.len()),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_str()
                .and_then(|s| s.parse::<Uuid>().ok())
                .ok_or_else(|| ApiError::bad(&format!("ids[{i}]"), "expected an image id (UUID)"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<BulkFilter, ApiError> {
        match value {
            Value::Object(map) => parse_filter(map),
            _ => panic!("test filters are objects"),
        }
    }

    fn param_of(result: Result<BulkFilter, ApiError>) -> String {
        match result {
            Err(ApiError::BadParameter { param, .. }) => param,
            other => panic!("expected a bad parameter, got {other:?}"),
        }
    }

    #[test]
    fn each_key_is_read_and_checked() {
        let id = Uuid::new_v4();
        let filter = parse(json!({"status": "failed", "before": "2026-01-31T12:00:00+01:00", "ids": [id]}))
            .expect("a valid filter");
        assert_eq!(filter.status, Some(JobStatus::Failed));
        assert_eq!(
            filter.before.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-01-31T11:00:00+00:00")
        );
        assert_eq!(filter.ids, Some(vec![id]));
    }

    #[test]
    fn a_bad_filter_names_the_key_at_fault() {
        assert_eq!(param_of(parse(json!({}))), "body");
        assert_eq!(param_of(parse(json!({"status": "done"}))), "status");
        assert_eq!(param_of(parse(json!({"status": 3}))), "status");
        assert_eq!(param_of(parse(json!({"before": "yesterday"}))), "before");
        assert_eq!(param_of(parse(json!({"ids": "x"}))), "ids");
        assert_eq!(
            param_of(parse(json!({"ids": [Uuid::new_v4(), "nope"]}))),
            "ids[1]"
        );
        assert_eq!(param_of(parse(json!({"statuses": "failed"}))), "statuses");
        let many: Vec<String> = (0..=BULK_LIMIT).map(|_| Uuid::nil().to_string()).collect();
        assert_eq!(param_of(parse(json!({ "ids": many }))), "ids");
    }
}
