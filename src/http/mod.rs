//! The HTTP API, the UI and downloads. `router()` builds the whole app so tests can drive it
//! without a socket; `serve()` binds it and shuts down gracefully.

mod auth;
mod downloads;
pub mod error;
pub mod events;
mod health;
mod images;
mod ui;
mod upload;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::Router;
use deadpool_postgres::Pool;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::config::Config;

pub use error::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Connection pool (bounded waits: a dead database answers `503` quickly).
    pub pool: Pool,
    /// Settings.
    pub config: Arc<Config>,
    /// Status changes from every replica, fed by this process's LISTEN connection.
    pub events: events::Hub,
    /// Uploads being read at once; bounds upload memory.
    pub upload_slots: Arc<Semaphore>,
    /// Accepted bearer tokens; empty when auth is off.
    pub tokens: Arc<Vec<String>>,
}

impl AppState {
    pub fn new(pool: Pool, config: Arc<Config>, events: events::Hub) -> AppState {
        AppState {
            pool,
            upload_slots: Arc::new(Semaphore::new(config.max_concurrent_uploads.max(1))),
            tokens: Arc::new(config.tokens()),
            config,
            events,
        }
    }
}

/// The whole application: API, legacy routes, UI, probes.
pub fn router(state: AppState) -> Router {
    // Several files per request are allowed; each is still checked against MAX_UPLOAD_BYTES.
    let body_limit = usize::try_from(
        state
            .config
            .max_upload_bytes
            .saturating_mul(upload::MAX_FILES as u64),
    )
    .unwrap_or(usize::MAX)
    .saturating_add(1 << 20);
    let api = Router::new()
        .merge(images::router())
        .merge(upload::router())
        .merge(downloads::router())
        .merge(events::router())
        .layer(DefaultBodyLimit::max(body_limit))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .merge(api)
        .merge(health::router())
        .merge(ui::router())
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves `router` on `listener` until `cancel` fires, then finishes open requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "HTTP listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await?;
    Ok(())
}

/// Longest `?wait=` a client may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
