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

/// Which images a bulk retry takes (the wire shape for the OpenAPI document; parsed by hand in
/// [`parse_filter`] so each error names its key).
pub struct BulkRetryFilter;

/// Which images a bulk delete takes.
pub struct BulkDeleteFilter;

/// An RFC 3339 time as chrono reads it (the document's `date-time`, spelt out so generated
/// examples are real times; days stop at 28 so that every match is a real date).
const RFC3339: &str =
    "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\
                       (\\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$";

fn filter_schema(statuses: &[JobStatus], what: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    let words: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
    let schema = serde_json::json!({
        "type": "object",
        "description": format!("{what}: every key given must match; at least one key"),
        "minProperties": 1,
        "additionalProperties": false,
        "properties": {
            "status": {"type": "string", "enum": words, "description": "only images in this status"},
            "before": {"type": "string", "format": "date-time", "pattern": RFC3339,
                       "description": "only images uploaded before this instant (RFC 3339)"},
            "ids": {"type": "array", "maxItems": BULK_LIMIT, "description": "only these images",
                    "items": {"type": "string", "format": "uuid"}},
        },
    });
    serde_json::from_value(schema).unwrap_or_else(|_| utoipa::openapi::ObjectBuilder::new().into())
}

impl utoipa::PartialSchema for BulkRetryFilter {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        let finished: Vec<JobStatus> = JobStatus::ALL.into_iter().filter(|s| !s.is_active()).collect();
        filter_schema(&finished, "the images to retry (finished ones only)")
    }
}
impl ToSchema for BulkRetryFilter {}

impl utoipa::PartialSchema for BulkDeleteFilter {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        filter_schema(&JobStatus::ALL, "the images to delete, whatever their status")
    }
}
impl ToSchema for BulkDeleteFilter {}

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
    request_body(content = BulkRetryFilter, content_type = "application/json",
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
    request_body(content = BulkDeleteFilter, content_type = "application/json",
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
                let bad = |why: String| {
                    ApiError::bad(
                        "before",
                        format!("expected an RFC 3339 time such as 2026-01-31T12:00:00Z: {why}"),
                    )
                };
                // chrono also takes a space for the `T`; JSON Schema's `date-time` does not.
                if !matches!(text.as_bytes().get(10), Some(b'T' | b't')) {
                    return Err(bad("the date and the time are joined by `T`".into()));
                }
                let at = DateTime::parse_from_rfc3339(text).map_err(|e| bad(e.to_string()))?;
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
    fn the_documented_schemas_parse_and_list_the_statuses_each_route_takes() {
        use utoipa::PartialSchema;
        let retry = serde_json::to_value(BulkRetryFilter::schema()).expect("json");
        assert_eq!(
            retry["properties"]["status"]["enum"],
            json!(["completed", "failed", "cancelled"])
        );
        assert_eq!(retry["minProperties"], 1);
        let delete = serde_json::to_value(BulkDeleteFilter::schema()).expect("json");
        assert_eq!(
            delete["properties"]["status"]["enum"].as_array().map(Vec::len),
            Some(5)
        );
        let pattern = delete["properties"]["before"]["pattern"]
            .as_str()
            .expect("pattern");
        assert!(pattern.contains("(\\.[0-9]{1,9})?"), "{pattern}");
    }

    #[test]
    fn a_bad_filter_names_the_key_at_fault() {
        assert_eq!(param_of(parse(json!({}))), "body");
        assert_eq!(param_of(parse(json!({"status": "done"}))), "status");
        assert_eq!(param_of(parse(json!({"status": 3}))), "status");
        assert_eq!(param_of(parse(json!({"before": "yesterday"}))), "before");
        assert_eq!(
            param_of(parse(json!({"before": "2026-01-31 12:00:00Z"}))),
            "before"
        );
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
