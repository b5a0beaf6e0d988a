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
}

impl AppState {
    pub fn new(
        pool: Pool,
        config: Arc<Config>,
        events: events::Hub,
        shutdown: CancellationToken,
    ) -> AppState {
        AppState {
            shutdown,
            pool,
            upload_slots: Arc::new(Semaphore::new(config.max_concurrent_uploads.max(1))),
            tokens: Arc::new(config.tokens()),
            config,
            events,
            worker_threads: None,
        }
    }
}
