//! The body of a webhook: `{"event": "image.completed" | "image.failed", "image": <the image
//! object>}`, the image object built by the API's own type from the snapshot the trigger took
//! in the transaction that finished the image (`sql/0014_webhooks.sql`), so a receiver gets
//! exactly the shape `GET /api/images/{id}` answers with, as it was at that moment.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::db::images::{Facts, ImageRecord, Media};
use crate::http::dto::{ImageObject, WebhookEvent};
use crate::states::JobStatus;

/// The trigger's `jsonb_build_object` of the row: `db::images::record_columns` by name.
/// Fields added to the table later are optional here, so old events still read.
#[derive(Debug, Deserialize)]
struct Snapshot {
    id: Uuid,
    status: JobStatus,
    filename: Option<String>,
    error: Option<String>,
    error_code: Option<String>,
    attempts: i32,
    uploaded_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    processed_at: Option<DateTime<Utc>>,
    pipeline: Option<serde_json::Value>,
    original_content_type: Option<String>,
    original_bytes: Option<i64>,
    original_width: Option<i32>,
    original_height: Option<i32>,
    processed_content_type: Option<String>,
    processed_bytes: Option<i64>,
    processed_width: Option<i32>,
    processed_height: Option<i32>,
    #[serde(default)]
    priority: i16,
    #[serde(default)]
    not_before: Option<DateTime<Utc>>,
    #[serde(default)]
    callback_url: Option<String>,
    #[serde(default)]
    original_frames: Option<i32>,
    #[serde(default)]
    processed_frames: Option<i32>,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    blurhash: Option<String>,
    #[serde(default)]
    dominant_color: Option<String>,
    #[serde(default)]
    exif: Option<serde_json::Value>,
}

impl From<Snapshot> for ImageRecord {
    fn from(s: Snapshot) -> ImageRecord {
        ImageRecord {
            id: s.id,
            status: s.status,
            filename: s.filename,
            error: s.error,
            error_code: s.error_code,
            attempts: s.attempts,
            uploaded_at: s.uploaded_at,
            started_at: s.started_at,
            processed_at: s.processed_at,
            pipeline: s.pipeline,
            original: Media {
                content_type: s.original_content_type,
                bytes: s.original_bytes,
                width: s.original_width,
                height: s.original_height,
                frames: s.original_frames,
            },
            processed: Media {
                content_type: s.processed_content_type,
                bytes: s.processed_bytes,
                width: s.processed_width,
                height: s.processed_height,
                frames: s.processed_frames,
            },
            priority: s.priority,
            not_before: s.not_before,
            facts: Facts {
                sha256: s.sha256,
                blurhash: s.blurhash,
                dominant_color: s.dominant_color,
                exif: s.exif,
            },
            callback_url: s.callback_url,
            // Variants are jobs of their own that finish on their own time, mostly after the
            // image: the event is the image's, so its `variants` is always `{}`.
            variants: Vec::new(),
        }
    }
}

/// The JSON body for `event` about the snapshot `image`. The same input gives the same bytes,
/// so every retry of an event sends (and signs) the same body.
/// `default_pipeline` (`DEFAULT_PIPELINE` as JSON) is shown for an image without its own, as
/// the API does.
pub fn body(
    event: &str,
    image: &serde_json::Value,
    default_pipeline: &serde_json::Value,
) -> Result<Vec<u8>, serde_json::Error> {
    let snapshot = Snapshot::deserialize(image)?;
    let payload = WebhookEvent {
        event: event.to_owned(),
        image: ImageObject::new(ImageRecord::from(snapshot), default_pipeline),
    };
    serde_json::to_vec(&payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_becomes_the_api_image_object() {
        let image = serde_json::json!({
            "id": "6f1c1e0a-3b7e-4b7a-9d35-0d6f5a6f0b11", "status": "completed", "filename": "a.png",
            "error": null, "error_code": null, "attempts": 1,
            "uploaded_at": "2026-12-07T12:00:00.123456+00:00",
            "started_at": "2026-12-07T12:00:01+01:00", "processed_at": "2026-12-07T12:00:02+00:00",
            "pipeline": null, "original_content_type": "image/png", "original_bytes": 100,
            "original_width": 40, "original_height": 30, "processed_content_type": "image/png",
            "processed_bytes": 50, "processed_width": 20, "processed_height": 15, "priority": 3,
            "not_before": null, "callback_url": "https://example.com/hook"
        });
        let sent: serde_json::Value =
            serde_json::from_slice(&body("image.completed", &image, &serde_json::Value::Null).expect("body"))
                .expect("json");
        assert_eq!(sent["event"], "image.completed");
        assert_eq!(sent["image"]["id"], "6f1c1e0a-3b7e-4b7a-9d35-0d6f5a6f0b11");
        assert_eq!(sent["image"]["processed"]["width"], 20);
        assert_eq!(sent["image"]["started_at"], "2026-12-07T11:00:01Z");
        assert_eq!(sent["image"]["callback_url"], "https://example.com/hook");
        assert_eq!(
            sent["image"]["links"]["self"],
            "/api/images/6f1c1e0a-3b7e-4b7a-9d35-0d6f5a6f0b11"
        );
        assert_eq!(
            body("image.completed", &image, &serde_json::Value::Null).ok(),
            body("image.completed", &image, &serde_json::Value::Null).ok()
        );
    }
}
