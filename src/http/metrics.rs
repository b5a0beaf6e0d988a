//! `GET /metrics` (Prometheus text) and the per-request instrumentation: a span carrying the
//! request id, and the request counter/histogram labelled by the matched route.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::state::AppState;
use crate::db::stats::oldest_pending_seconds;
use crate::states::JobStatus;

/// Queue depth is read from the database at most this often, however many scrapers there are.
const QUEUE_REFRESH: Duration = Duration::from_secs(5);

/// The queue's rows from the trigger-kept counters (`sql/0008_table_health.sql`; a count
/// through the partial indexes would cost as much as the backlog, a million rows after a bulk
/// insert), plus the planner's estimate of the whole table.
const QUEUE_DEPTH: &str = concat!(
    "\
select coalesce(sum(pending), 0)::int8, coalesce(sum(processing), 0)::int8,
       (select reltuples::float8 from pg_class where oid = 'processed_images'::regclass),
       ",
    oldest_pending_seconds!(),
    "
from processed_images_counts"
);

/// The route label for requests no route matched.
const UNMATCHED: &str = "unmatched";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4",
        content_type = "text/plain; version=0.0.4", body = String)))]
async fn metrics(State(state): State<AppState>) -> Response {
    refresh_queue_depth(&state).await;
    let mut response = crate::metrics::render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Re-reads the queue depth when the last read is older than `QUEUE_REFRESH`. Bounded: a slow
/// or absent database leaves the previous values and never holds up the scrape for long.
async fn refresh_queue_depth(state: &AppState) {
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    {
        let Ok(mut last) = LAST.lock() else { return };
        if last.is_some_and(|t| t.elapsed() < QUEUE_REFRESH) {
            return;
        }
        *last = Some(Instant::now());
    }
    let read = async {
        let client = state.pool.get().await.map_err(|e| e.to_string())?;
        let row = client
            .query_one(QUEUE_DEPTH, &[])
            .await
            .map_err(|e| e.to_string())?;
        let pending: i64 = row.try_get(0).map_err(|e| e.to_string())?;
        let processing: i64 = row.try_get(1).map_err(|e| e.to_string())?;
        let estimate: Option<f64> = row.try_get(2).map_err(|e| e.to_string())?;
        let oldest: f64 = row.try_get(3).map_err(|e| e.to_string())?;
        Ok::<_, String>((pending, processing, estimate, oldest))
    };
    match tokio::time::timeout(Duration::from_secs(2), read).await {
        Ok(Ok((pending, processing, estimate, oldest))) => {
            crate::metrics::oldest_pending(oldest);
            crate::metrics::queue_depth(JobStatus::Pending, pending);
            crate::metrics::queue_depth(JobStatus::Processing, processing);
            if let Some(rows) = estimate {
                crate::metrics::estimated_rows(rows);
            }
        }
        Ok(Err(e)) => tracing::debug!(error = %e, "reading the queue depth failed"),
        Err(_) => tracing::debug!("reading the queue depth timed out"),
    }
}

/// Counts and times every answer by method, matched route template and status.
pub async fn track(request: Request, next: Next) -> Response {
    let route = route_of(&request).to_owned();
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    crate::metrics::http_request(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// The span every request runs in. Only the path is logged: the query may carry
/// `access_token`, and headers may carry the bearer token.
pub fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "request",
        method = %request.method(),
        route = route_of(request),
        path = request.uri().path(),
        request_id,
    )
}

fn route_of<B>(request: &axum::http::Request<B>) -> &str {
    request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or(UNMATCHED)
}
