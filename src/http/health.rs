//! Liveness and readiness probes.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::Probe;
use super::AppState;
use crate::db::migrate;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// Live: the process answers. Never touches the database, so a database outage does not get
/// every pod restarted.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "the process answers", body = Probe)))]
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready: the database answers within a bound and its schema is current.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "database reachable, schema current", body = Probe),
        (status = 503, description = "database unreachable, slow, or schema outdated", body = Probe),
    ))]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let check = async {
        let client = state.pool.get().await.map_err(|e| e.to_string())?;
        migrate::current_version(&**client)
            .await
            .map_err(|e| e.to_string())
    };
    match tokio::time::timeout(Duration::from_secs(3), check).await {
        Ok(Ok(v)) if v >= migrate::latest_version() => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "schema_version": v })),
        ),
        Ok(Ok(v)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({ "status": "schema_outdated", "schema_version": v, "expected": migrate::latest_version() }),
            ),
        ),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "database_unavailable", "detail": e })),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "database_timeout" })),
        ),
    }
}
