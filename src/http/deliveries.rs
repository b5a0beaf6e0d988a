//! `GET /api/images/{id}/deliveries`: the image's webhook events and every attempt to deliver
//! them, so an operator can see what a receiver answered and when.

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::{AttemptObject, DeliveryList, DeliveryObject};
use super::error::{ApiError, ErrorBody};
use super::extract::ImageId;
use super::state::AppState;
use crate::db::webhooks::{self as outbox, DeliveryLogRow};

/// The most events listed for one image (each has at most `WEBHOOK_MAX_ATTEMPTS` attempts).
const MAX_EVENTS: i64 = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(deliveries))
}

/// `GET /api/images/{id}/deliveries`.
#[utoipa::path(get, path = "/api/images/{id}/deliveries", tag = "images",
    params(("id" = String, Path, description = "image id (UUID)")),
    responses(
        (status = 200, description = "the image's webhook events (the latest 100, oldest first), each with its attempts",
            body = DeliveryList),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "unknown or malformed id", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn deliveries(
    State(state): State<AppState>,
    ImageId(id): ImageId,
) -> Result<Json<DeliveryList>, ApiError> {
    let client = state.pool.get().await?;
    if !outbox::image_exists(&client, id).await? {
        return Err(ApiError::NotFound);
    }
    let rows = outbox::list_deliveries(&client, id, MAX_EVENTS).await?;
    Ok(Json(DeliveryList {
        deliveries: group(rows),
    }))
}

/// Folds the join's rows (one per attempt, or one per untried event) into events.
fn group(rows: Vec<DeliveryLogRow>) -> Vec<DeliveryObject> {
    let mut out: Vec<DeliveryObject> = Vec::new();
    for row in rows {
        let attempt = match (row.attempt, row.at, row.outcome) {
            (Some(attempt), Some(at), Some(outcome)) => Some(AttemptObject {
                attempt,
                at,
                outcome,
                status_code: row.status_code,
                error: row.error,
                duration_ms: row.duration_ms.unwrap_or(0),
            }),
            _ => None,
        };
        if out.last().is_none_or(|d| d.webhook_id != row.webhook_id) {
            out.push(DeliveryObject {
                webhook_id: row.webhook_id,
                event: row.event,
                url: row.url,
                state: row.state,
                created_at: row.created_at,
                next_attempt_at: row.next_attempt_at,
                attempts: Vec::new(),
            });
        }
        if let (Some(attempt), Some(last)) = (attempt, out.last_mut()) {
            last.attempts.push(attempt);
        }
    }
    out
}
