//! What every handler can reach.

use std::sync::Arc;

use deadpool_postgres::Pool;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::events;
use crate::config::Config;
use crate::worker::health::ThreadHealth;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Connection pool (bounded waits: a dead database answers `503` quickly).
    pub pool: Pool,
    /// `db::BLOB_POOL_SIZE` connections for uploads with a file from `db::LARGE_BLOB_BYTES` up
    /// (streamed in with COPY): at most that many are written at once, and the small uploads'
    /// connections are never queued behind them.
    pub blob_pool: Pool,
    /// Settings.
    pub config: Arc<Config>,
    /// Status changes from every replica, fed by this process's LISTEN connection.
    pub events: events::Hub,
    /// Uploads being read at once; bounds upload memory.
    pub upload_slots: Arc<Semaphore>,
    /// Accepted bearer tokens; empty when auth is off.
    pub tokens: Arc<Vec<String>>,
    /// Fires on shutdown, so long-lived responses (SSE, long-polls) end and let it finish.
    pub shutdown: CancellationToken,
    /// The worker's threads, in a process that runs one (`/healthz` fails when all are stuck).
    pub worker_threads: Option<Arc<ThreadHealth>>,
    /// `DEFAULT_PIPELINE` as JSON: what a row without a pipeline of its own is processed with,
    /// shown as its effective pipeline and matched by `dedupe=true`.
    pub default_pipeline: Arc<serde_json::Value>,
}

impl AppState {
    pub fn new(
        pool: Pool,
        blob_pool: Pool,
        config: Arc<Config>,
        events: events::Hub,
        shutdown: CancellationToken,
    ) -> AppState {
        AppState {
            shutdown,
            pool,
            blob_pool,
            upload_slots: Arc::new(Semaphore::new(config.max_concurrent_uploads.max(1))),
            tokens: Arc::new(config.tokens()),
            config: config.clone(),
            events,
            worker_threads: None,
            default_pipeline: Arc::new(
                serde_json::to_value(config.pipeline_or_default()).unwrap_or(serde_json::Value::Null),
            ),
        }
    }
}
