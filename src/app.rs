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
use crate::worker::{self, health::ThreadHealth};

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
    if let Role::BenchJpeg { iterations } = role {
        return tokio::task::spawn_blocking(move || crate::bench_jpeg::run(iterations)).await?;
    }
    // Handlers first: a signal that arrives while we start must still mean "shut down cleanly".
    let cancel = CancellationToken::new();
    let signal = shutdown_signal()?;
    tokio::spawn({
        let cancel = cancel.clone();
        async move {
            signal.await;
            tracing::info!("shutdown requested");
            cancel.cancel();
        }
    });
    let local = if config.database_url().is_none() {
        let dir = config.data_dir.join("postgres");
        Some(tokio::task::spawn_blocking(move || LocalPostgres::start(&dir)).await??)
    } else {
        None
    };
    let url = match (config.database_url(), &local) {
        (Some(url), _) => url.to_owned(),
        (None, Some(pg)) => pg.url(),
        (None, None) => unreachable!("a local cluster is started when DATABASE_URL is unset"),
    };
    let result = match spawn_with(role, config, url, cancel).await {
        Ok(running) => running.done.await.map_err(anyhow::Error::from).and_then(|r| r),
        Err(e) => Err(e),
    };
    if let Some(pg) = local {
        tracing::info!("stopping the local PostgreSQL");
        if let Err(e) = tokio::task::spawn_blocking(move || pg.stop()).await? {
            tracing::warn!(error = %e, "stopping the local PostgreSQL failed");
        }
    }
    result
}

/// [`spawn_with`] on a token of its own.
pub async fn spawn(role: Role, config: Config, url: String) -> anyhow::Result<Running> {
    spawn_with(role, config, url, CancellationToken::new()).await
}

/// Starts the parts of `role` in the background. HTTP (probes included) is served at once, so
/// `/healthz` answers and `/readyz` says 503 while the database is still unreachable; this
/// returns once migrations are applied and the worker has started.
pub async fn spawn_with(
    role: Role,
    config: Config,
    url: String,
    cancel: CancellationToken,
) -> anyhow::Result<Running> {
    if role == Role::Migrate {
        migrate_when_reachable(&url, &cancel).await?;
        return Ok(Running {
            addr: None,
            cancel,
            done: tokio::spawn(async { Ok(()) }),
        });
    }
    let config = Arc::new(config);
    let pool = db::pool(&url, config.db_pool_size)?;
    let mut parts: Vec<JoinHandle<anyhow::Result<()>>> = Vec::new();
    let listener = tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .with_context(|| format!("binding {}", config.listen_addr))?;
    let addr = Some(listener.local_addr()?);
    let hub = Hub::new();
    let runs_worker = matches!(role, Role::Run | Role::Worker);
    let threads = ThreadHealth::new(config.worker_threads as usize);
    let blob_pool = db::pool(&url, db::BLOB_POOL_SIZE)?;
    let mut state = AppState::new(
        pool.clone(),
        blob_pool,
        config.clone(),
        hub.clone(),
        cancel.clone(),
    );
    state.worker_threads = runs_worker.then(|| threads.clone());
    let app = match role {
        // A worker serves only probes (and metrics) for the orchestrator.
        Role::Worker => http::ops_router(state),
        _ => {
            parts.push(tokio::spawn({
                let (url, cancel) = (url.clone(), cancel.clone());
                async move {
                    hub.run(url, cancel).await;
                    Ok(())
                }
            }));
            http::router(state)
        }
    };
    parts.push(tokio::spawn(http::serve(
        listener,
        app,
        config.header_read_timeout(),
        cancel.clone(),
    )));
    if let Err(e) = migrate_when_reachable(&url, &cancel).await {
        cancel.cancel();
        for part in parts {
            let _ = part.await;
        }
        return Err(e);
    }
    if runs_worker {
        let jobs_pool = db::worker_pool_with(&url, config.db_pool_size, config.webhook_url())?;
        if let Some(days) = config.retention_days {
            parts.push(tokio::spawn(crate::retention::run(
                jobs_pool.clone(),
                days,
                cancel.clone(),
            )));
        }
        // Its own task on the same token: deliveries are async I/O and never take the image
        // worker's threads; it runs even without WEBHOOK_URL, for uploads' `callback_url`.
        parts.push(tokio::spawn(crate::webhooks::run(
            jobs_pool.clone(),
            url.clone(),
            config.clone(),
            cancel.clone(),
        )));
        parts.push(tokio::spawn(worker::run(
            jobs_pool,
            url,
            config,
            threads,
            cancel.clone(),
        )));
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

/// Registers SIGINT and SIGTERM (what Kubernetes sends) now, and resolves on either.
pub fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
    })
}
