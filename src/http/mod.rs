//! The HTTP API, the UI and downloads. `router()` builds the whole app so tests can drive it
//! without a socket; `serve()` binds it and shuts down gracefully. Every route is registered
//! from its handler's `#[utoipa::path]` (see `openapi`), so `/openapi.json` lists exactly what
//! the router serves.

//!
//! Layout: `state` (what handlers reach), `error` (the one error type), `dto` (every wire
//! type), `extract` (path, query and header values parsed once), one file per resource
//! (`images`, `upload/`, `downloads`, `deliveries`, `variants`, `presets`, `events`, `health`,
//! `metrics`, `ui`) each with its own `router()`, `legacy` (the original design's routes as
//! aliases), `auth` and
//! `limits` (the middleware), and `openapi` (assembles the document).

mod auth;
mod bulk;
mod deliveries;
mod downloads;
pub(crate) mod dto;
pub mod error;
pub mod events;
mod extract;
mod health;
mod images;
mod legacy;
mod limits;
mod metrics;
mod openapi;
mod presets;
mod state;
mod ui;
mod upload;
mod variants;

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::OpenApi as Document;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::ApiError;
pub use state::AppState;

/// Every route, in two groups: behind the bearer token (`API_TOKEN`), and open (probes,
/// metrics, this API's document, the UI). The router and the OpenAPI document are both built
/// from these.
fn route_groups() -> (OpenApiRouter<AppState>, OpenApiRouter<AppState>) {
    let protected = OpenApiRouter::new()
        .merge(images::router())
        .merge(bulk::router())
        .merge(upload::router())
        .merge(downloads::router())
        .merge(deliveries::router())
        .merge(variants::router())
        .merge(events::router())
        .merge(presets::router());
    let open = OpenApiRouter::new()
        .merge(health::router())
        .merge(metrics::router())
        .merge(variants::public_router())
        .routes(routes!(openapi_json))
        .merge(ui::router());
    (protected, open)
}

/// The OpenAPI document, built once from the same route groups the router is built from.
pub fn document() -> &'static Document {
    static DOC: OnceLock<Document> = OnceLock::new();
    DOC.get_or_init(|| {
        let (protected, open) = route_groups();
        openapi::assemble(protected.into_openapi(), open.into_openapi())
    })
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
async fn openapi_json() -> Response {
    Json(document()).into_response()
}

/// The whole application: API, legacy routes, UI, probes.
pub fn router(state: AppState) -> Router {
    if let Err(e) = crate::metrics::install() {
        tracing::warn!(error = %e, "metrics disabled");
    }
    // Several files per request are allowed; each is still checked against MAX_UPLOAD_BYTES.
    let body_limit = usize::try_from(
        state
            .config
            .max_upload_bytes
            .saturating_mul(dto::MAX_FILES as u64),
    )
    .unwrap_or(usize::MAX)
    .saturating_add(1 << 20);
    let (protected, open) = route_groups();
    let api = Router::from(protected)
        .layer(DefaultBodyLimit::max(body_limit))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .merge(api)
        .merge(Router::from(open))
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // URL, header and small-body limits and the per-request deadline, inside the metrics
        // layer so refusals are counted.
        .layer(axum::middleware::from_fn(limits::enforce))
        .layer(axum::middleware::from_fn(limits::close_after_error_with_body))
        .layer(axum::middleware::from_fn(metrics::track))
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
        // Outermost: a request id (the client's `x-request-id`, or a new UUID) set before the
        // span opens, and echoed on the response.
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(metrics::request_span))
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
        .with_state(state)
}

/// What a worker-only process serves: probes (and metrics), so Kubernetes can check it too.
pub fn ops_router(state: AppState) -> Router {
    if let Err(e) = crate::metrics::install() {
        tracing::warn!(error = %e, "metrics disabled");
    }
    Router::new()
        .merge(health::router())
        .merge(metrics::router())
        .fallback(|| async { ApiError::RouteNotFound })
        .with_state(state)
}

/// Serves `app` on `listener` until `cancel`, then lets open requests finish for at most
/// [`SHUTDOWN_HTTP_GRACE`].
///
/// Our own accept loop rather than `axum::serve`, which gives hyper no timer: without one a
/// client could hold a connection (and its task) open forever by sending its request headers
/// a byte at a time. Here every connection must deliver a request's headers within
/// `header_read_timeout`, and an idle keep-alive connection is closed after the same time.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    header_read_timeout: Duration,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    use hyper::server::conn::http1;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt;

    tracing::info!(addr = %listener.local_addr()?, "HTTP listening");
    // HTTP/1.1 only, as before (axum's http2 feature is off): browsers, curl and Postman all
    // speak it, and a load balancer in front can offer HTTP/2 to clients.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Small JSON answers should not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let service =
            TowerToHyperService::new(app.clone().map_request(
                |req: axum::http::Request<hyper::body::Incoming>| req.map(axum::body::Body::new),
            ));
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_HTTP_GRACE) => {
            tracing::warn!("open requests did not finish in time; closing them");
        }
    }
    Ok(())
}

/// How long open HTTP requests get to finish after shutdown starts.
const SHUTDOWN_HTTP_GRACE: Duration = Duration::from_secs(10);
