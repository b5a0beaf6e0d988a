//! The webhook wire types: the body a receiver gets, and `GET /api/images/{id}/deliveries`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::ImageObject;

/// The JSON body of every webhook (signed the Standard Webhooks way: headers `webhook-id`,
/// `webhook-timestamp`, `webhook-signature`).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEvent {
    /// `image.completed` or `image.failed`.
    #[schema(pattern = "^image\\.(completed|failed)$")]
    pub event: String,
    /// The image object as `GET /api/images/{id}` showed it when the image finished.
    pub image: ImageObject,
}

/// An image's webhook events (at most the latest 100), oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryObject>,
}

/// One event to one receiver, and every attempt to deliver it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryObject {
    /// The `webhook-id` header: the same on every attempt (receivers drop duplicates by it).
    pub webhook_id: String,
    /// `image.completed` or `image.failed`.
    pub event: String,
    pub url: String,
    /// `pending` (waiting for its next attempt), `delivering`, `delivered` or `failed`
    /// (attempts spent, or the destination refused).
    #[schema(pattern = "^(pending|delivering|delivered|failed)$")]
    pub state: String,
    /// When the image finished and the event was written.
    pub created_at: DateTime<Utc>,
    /// While `pending`: not tried again before this time.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempts: Vec<AttemptObject>,
}

/// One attempt to deliver an event.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptObject {
    /// From 1.
    pub attempt: i32,
    pub at: DateTime<Utc>,
    /// `delivered`, `retried`, `failed` (the last attempt) or `refused` (a destination that
    /// may not be reached).
    #[schema(pattern = "^(delivered|retried|failed|refused)$")]
    pub outcome: String,
    /// The receiver's HTTP status; `null` when it gave none (timeout, refused, connection error).
    pub status_code: Option<i32>,
    /// What went wrong; `null` when delivered.
    pub error: Option<String>,
    pub duration_ms: i32,
}
