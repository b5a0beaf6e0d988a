//! Liveness and readiness probes.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::HealthAnswer;
use super::state::AppState;
use crate::db::migrate;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// Live: the process answers, and if it runs a worker, not every worker thread is stuck in a
/// job that ran past `JOB_TIMEOUT_SECS` (a thread cannot be stopped; a restart frees it). Never
/// touches the database, so a database outage does not get every pod restarted.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses(
        (status = 200, description = "the process answers", body = HealthAnswer),
        (status = 503, description = "every worker thread is stuck in a job past JOB_TIMEOUT_SECS: restart the process", body = HealthAnswer),
    ))]
async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<HealthAnswer>) {
    let threads = state.worker_threads.as_deref();
    let (code, status, detail) = match threads {
        Some(t) if t.all_stuck() => (
            StatusCode::SERVICE_UNAVAILABLE,
            "threads_stuck",
            Some(format!(
                "all {} worker threads are stuck in jobs past JOB_TIMEOUT_SECS",
                t.threads()
            )),
        ),
        _ => (StatusCode::OK, "ok", None),
    };
    let answer = HealthAnswer {
        status,
        detail,
        stuck_threads: threads.map(|t| t.stuck() as u32),
        ..HealthAnswer::default()
    };
    (code, Json(answer))
}

/// Ready: the database answers within a bound and its schema is current.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "database reachable, schema current", body = HealthAnswer),
        (status = 503, description = "database unreachable, slow, or schema outdated", body = HealthAnswer),
    ))]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<HealthAnswer>) {
    let check = async {
        let client = state.pool.get().await.map_err(|e| e.to_string())?;
        migrate::current_version(&**client)
            .await
            .map_err(|e| e.to_string())
    };
    let unavailable = StatusCode::SERVICE_UNAVAILABLE;
    let (code, answer) = match tokio::time::timeout(Duration::from_secs(3), check).await {
        Ok(Ok(v)) if v >= migrate::latest_version() => (
            StatusCode::OK,
            HealthAnswer {
                status: "ready",
                schema_version: Some(v),
                ..HealthAnswer::default()
            },
        ),
        Ok(Ok(v)) => (
            unavailable,
            HealthAnswer {
                status: "schema_outdated",
                schema_version: Some(v),
                expected: Some(migrate::latest_version()),
                ..HealthAnswer::default()
            },
        ),
        Ok(Err(e)) => (
            unavailable,
            HealthAnswer {
                status: "database_unavailable",
                detail: Some(e),
                ..HealthAnswer::default()
            },
        ),
        Err(_) => (
            unavailable,
            HealthAnswer {
                status: "database_timeout",
                ..HealthAnswer::default()
            },
        ),
    };
    (code, Json(answer))
}
