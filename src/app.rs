//! Starting and stopping a role: database (local or given), migrations, API, worker, and one
//! `CancellationToken` that stops them all.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::backoff;
use crate::config::{Config, Role};
use crate::db::{self, local::LocalPostgres, migrate};
use crate::http::{self, events::Hub, AppState};
use crate::worker;

/// A started role.
pub struct Running {
    /// Where HTTP listens (roles with an API).
    pub addr: Option<SocketAddr>,
    /// Cancel to shut everything down gracefully.
    pub cancel: CancellationToken,
    /// Ends when every part has stopped.
    pub done: JoinHandle<anyhow::Result<()>>,
}

/// Runs `role` until SIGINT/SIGTERM.
pub async fn run(role: Role, config: Config) -> anyhow::Result<()> {
    let local = if config.database_url.is_none() {
        let dir = config.data_dir.join("postgres");
        Some(tokio::task::spawn_blocking(move || LocalPostgres::start(&dir)).await??)
    } else {
        None
    };
    let url = match (&config.database_url, &local) {
        (Some(url), _) => url.clone(),
        (None, Some(pg)) => pg.url(),
        (None, None) => unreachable!("a local cluster is started when DATABASE_URL is unset"),
    };
    let result = run_with(role, config, url, shutdown_signal()).await;
    if let Some(pg) = local {
        tracing::info!("stopping the local PostgreSQL");
        if let Err(e) = tokio::task::spawn_blocking(move || pg.stop()).await? {
            tracing::warn!(error = %e, "stopping the local PostgreSQL failed");
        }
    }
    result
}

async fn run_with(
    role: Role,
    config: Config,
    url: String,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let running = spawn(role, config, url).await?;
    let cancel = running.cancel.clone();
    tokio::spawn(async move {
        stop.await;
        tracing::info!("shutdown requested");
        cancel.cancel();
    });
    running.done.await?
}

/// Migrates, then starts the parts of `role` in the background.
pub async fn spawn(role: Role, config: Config, url: String) -> anyhow::Result<Running> {
    let cancel = CancellationToken::new();
    migrate_when_reachable(&url, &cancel).await?;
    let config = Arc::new(config);
    if role == Role::Migrate {
        return Ok(Running {
            addr: None,
            cancel,
            done: tokio::spawn(async { Ok(()) }),
        });
    }
    let pool = db::pool(&url, config.db_pool_size)?;
    let mut parts: Vec<JoinHandle<anyhow::Result<()>>> = Vec::new();
    let mut addr = None;
    if matches!(role, Role::Run | Role::Api) {
        let hub = Hub::new();
        parts.push(tokio::spawn({
            let (hub, url, cancel) = (hub.clone(), url.clone(), cancel.clone());
            async move {
                hub.run(url, cancel).await;
                Ok(())
            }
        }));
        let listener = tokio::net::TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("binding {}", config.listen_addr))?;
        addr = Some(listener.local_addr()?);
        let app = http::router(AppState::new(pool.clone(), config.clone(), hub));
        parts.push(tokio::spawn(http::serve(listener, app, cancel.clone())));
    }
    if matches!(role, Role::Run | Role::Worker) {
        parts.push(tokio::spawn(worker::run(pool, url, config, cancel.clone())));
    }
    let done = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            let mut first_error = None;
            for part in parts {
                let result = part.await.map_err(anyhow::Error::from).and_then(|r| r);
                if let Err(e) = result {
                    // One part failing stops the others: a half-running replica helps nobody.
                    tracing::error!(error = ?e, "stopping after a fatal error");
                    cancel.cancel();
                    first_error.get_or_insert(e);
                }
            }
            first_error.map_or(Ok(()), Err)
        }
    });
    Ok(Running { addr, cancel, done })
}

/// Applies migrations, waiting (with backoff) for the database to come up: in a cluster the
/// app often starts before PostgreSQL does.
async fn migrate_when_reachable(url: &str, cancel: &CancellationToken) -> anyhow::Result<()> {
    let mut attempt = 0;
    loop {
        match db::connect(url).await {
            Ok(mut client) => {
                let applied = migrate::run(&mut client).await?;
                tracing::info!(applied, version = migrate::latest_version(), "schema is current");
                return Ok(());
            }
            Err(e) if e.is_unavailable() && attempt < 60 => {
                let wait = backoff::delay(attempt, Duration::from_millis(200), Duration::from_secs(5));
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "database not reachable yet");
                attempt += 1;
                tokio::select! {
                    _ = cancel.cancelled() => anyhow::bail!("cancelled while waiting for the database"),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            Err(e) => return Err(e).context("connecting to the database"),
        }
    }
}

/// Resolves on SIGINT (ctrl-c) or SIGTERM (what Kubernetes sends).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
