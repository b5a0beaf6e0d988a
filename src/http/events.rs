//! Live status events: one LISTEN connection per API process on the status channel, fanned out
//! to every subscriber through a broadcast channel (SSE clients and `?wait=` long-polls).

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::dto::SseEvent;
use super::error::ErrorBody;
use super::state::AppState;
use crate::db::listener::{self, ListenEvent};

/// The channel the status trigger notifies, with payload `<uuid>:<status>`.
pub const STATUS_CHANNEL: &str = "image_status";

/// One status change: of an image, or (with `preset`) of one of its variants.
#[derive(Debug, Clone, Serialize)]
pub struct StatusEvent {
    pub id: Uuid,
    /// A variant's preset; absent for the image's own status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// A variant's negotiated format (`avif`, `webp`); absent for its own format.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// `pending`, `processing`, `completed`, `failed`, `cancelled` or `deleted`.
    pub status: String,
    /// Per-process sequence number, sent as the SSE event id.
    #[serde(skip)]
    pub seq: u64,
}

/// Fan-out point for status events.
#[derive(Clone)]
pub struct Hub {
    /// Every subscriber gets every event; slow ones lag and are told to resync.
    tx: broadcast::Sender<StatusEvent>,
    /// Source of `seq`.
    seq: Arc<AtomicU64>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

impl Hub {
    pub fn new() -> Hub {
        let (tx, _) = broadcast::channel(4096);
        Hub {
            tx,
            seq: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<StatusEvent> {
        self.tx.subscribe()
    }

    /// `<id>:<status>` (an image) or `<id>:<status>:<preset>:<format>` (a variant, sql/0015).
    fn publish(&self, payload: &str) {
        let mut parts = payload.splitn(4, ':');
        let (Some(id), Some(status)) = (parts.next(), parts.next()) else {
            return;
        };
        let Ok(id) = Uuid::parse_str(id) else { return };
        let preset = parts.next().map(str::to_owned);
        let format = parts.next().filter(|f| !f.is_empty()).map(str::to_owned);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        // No subscribers is fine: nobody is watching.
        let _ = self.tx.send(StatusEvent {
            id,
            preset,
            format,
            status: status.to_owned(),
            seq,
        });
    }

    /// Listens on the status channel until `cancel` fires, publishing every change.
    pub async fn run(self, url: String, cancel: CancellationToken) {
        listener::run(
            url,
            vec![STATUS_CHANNEL],
            move |event| match event {
                ListenEvent::Notification { payload, .. } => self.publish(&payload),
                // Changes during a disconnect were missed: tell clients to refetch.
                ListenEvent::Connected => self.publish(&format!("{}:resync", Uuid::nil())),
            },
            cancel,
        )
        .await
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// `GET /api/events`: `event: image` per image status change, `event: variant` per variant's;
/// `event: resync` when the client may have
/// missed changes (it lagged, or the server reconnected to the database) and should refetch.
#[utoipa::path(get, path = "/api/events", tag = "events",
    params(("access_token" = Option<String>, Query,
        description = "the bearer token, for clients that cannot set headers (EventSource)")),
    responses(
        (status = 200, description = "Server-Sent Events: `event: image` with `{\"id\", \"status\"}` per \
                                      change, `event: variant` with `{\"id\", \"preset\", \"status\"}` (and \
                                      `format` for a negotiated one) per variant's change, `event: resync` \
                                      when changes may have been missed",
            content_type = "text/event-stream", body = SseEvent),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
    ))]
async fn events(State(state): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = BroadcastStream::new(state.events.subscribe()).map(|item| {
        Ok(match item {
            Ok(e) if e.id.is_nil() => Event::default().event("resync").data("{}"),
            Ok(e) => Event::default()
                .event(if e.preset.is_some() { "variant" } else { "image" })
                .id(e.seq.to_string())
                .json_data(&e)
                .unwrap_or_else(|_| Event::default().event("resync").data("{}")),
            Err(BroadcastStreamRecvError::Lagged(n)) => Event::default()
                .event("resync")
                .data(format!("{{\"missed\":{n}}}")),
        })
    });
    // End the stream on shutdown; otherwise one open browser tab holds graceful shutdown.
    let stream = stream.take_until(state.shutdown.clone().cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
