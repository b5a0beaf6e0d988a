//! The worker: LISTEN for wake-ups, claim as many jobs as there are free threads, run each on a
//! blocking thread while the async side renews its lease, and write the result back fenced.
//!
//! The loop is one `select!` over cancellation, notifications, a fallback sweep tick, the
//! moment the next backed-off row comes due, and finished jobs. NOTIFY is only a hint: the tick
//! and every (re)connect sweep the table too.

mod job;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::db::{self, jobs, listener};

/// The channel the insert/retry trigger notifies.
pub const JOBS_CHANNEL: &str = "image_jobs";

/// Shared by the worker loop and every job it runs.
pub(crate) struct WorkerContext {
    /// Pool for claims and result writes.
    pub pool: Pool,
    /// Settings (threads, lease, attempts, limits, default pipeline).
    pub config: Arc<Config>,
    /// This process's claim-holder name: host, pid and a random suffix, unique per start.
    pub worker_id: String,
}

/// Runs the worker until `cancel` fires, then drains: in-flight jobs get
/// `SHUTDOWN_GRACE_SECS` to finish, and any still running are released to the queue.
pub async fn run(
    pool: Pool,
    url: String,
    config: Arc<Config>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let worker_id = format!(
        "{}-{}-{}",
        hostname(),
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let threads = config.worker_threads as usize;
    tracing::info!(%worker_id, threads, "worker started");
    let ctx = Arc::new(WorkerContext {
        pool,
        config: config.clone(),
        worker_id,
    });

    let wake = Arc::new(Notify::new());
    let listen_cancel = cancel.child_token();
    let listen = tokio::spawn(listener::run(
        url,
        vec![JOBS_CHANNEL],
        {
            let wake = wake.clone();
            move |_| wake.notify_one()
        },
        listen_cancel.clone(),
    ));

    let slots = Arc::new(Semaphore::new(threads));
    // Cancelled after the grace period: jobs still running release their claims.
    let abandon = CancellationToken::new();
    let mut running = JoinSet::new();
    let mut sweep = tokio::time::interval(Duration::from_secs(config.sweep_secs));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // When a pending row with a future `run_after` (a retry backoff, a delayed job) comes due:
    // nothing notifies then, so the loop wakes itself instead of waiting for the next sweep.
    let mut next_due: Option<tokio::time::Instant> = None;

    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            Some(finished) = running.join_next(), if !running.is_empty() => {
                if let Err(e) = finished {
                    tracing::error!(error = %e, "job task failed");
                }
            }
            _ = wake.notified() => {}
            _ = sweep.tick() => {
                reap_expired(&ctx).await;
            }
            _ = sleep_until(next_due), if next_due.is_some() => {}
        }
        next_due = claim_while_free(&ctx, &slots, &mut running, &abandon).await;
    }

    listen_cancel.cancel();
    drain(
        &mut running,
        &abandon,
        Duration::from_secs(config.shutdown_grace_secs),
    )
    .await;
    let _ = listen.await;
    tracing::info!("worker stopped");
    Ok(())
}

/// Returns jobs whose worker vanished to the queue.
async fn reap_expired(ctx: &WorkerContext) {
    let result = match ctx.pool.get().await {
        Ok(client) => jobs::reap_expired(&client, ctx.config.max_attempts).await,
        Err(e) => Err(db::DbError::from(e)),
    };
    match result {
        Ok(0) => {}
        Ok(n) => {
            crate::metrics::jobs_reaped(n);
            tracing::warn!(jobs = n, "re-queued jobs whose lease expired");
        }
        Err(e) => tracing::warn!(error = %e, "lease sweep failed"),
    }
}

/// Sleeps until `at`; `None` never comes (the `select!` branch is disabled then anyway).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Claims jobs while threads are free and the queue has runnable rows. When threads are left
/// free, returns when the next pending row comes due (`None`: nothing pending, all threads
/// busy, or the database could not say; a notification or the sweep wakes the loop then).
async fn claim_while_free(
    ctx: &Arc<WorkerContext>,
    slots: &Arc<Semaphore>,
    running: &mut JoinSet<()>,
    abandon: &CancellationToken,
) -> Option<tokio::time::Instant> {
    loop {
        let free = slots.available_permits();
        if free == 0 {
            return None;
        }
        let claimed = match ctx.pool.get().await {
            Ok(client) => jobs::claim_jobs(&client, &ctx.worker_id, free as i64, ctx.config.lease()).await,
            Err(e) => Err(db::DbError::from(e)),
        };
        let claimed = match claimed {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, "claiming jobs failed; the next sweep tries again");
                return None;
            }
        };
        let got = claimed.len();
        for job in claimed {
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                // Only this loop takes permits, so this cannot happen; release rather than lose it.
                tracing::error!(image_id = %job.id, "no free thread for a claimed job");
                return None;
            };
            running.spawn(job::run(ctx.clone(), job, permit, abandon.clone()));
        }
        if got < free {
            return next_due(ctx).await;
        }
    }
}

/// When the earliest pending row becomes runnable, if one is pending. A row already runnable
/// here lost a race to another replica's claim or was added since: try again shortly.
async fn next_due(ctx: &WorkerContext) -> Option<tokio::time::Instant> {
    let due = match ctx.pool.get().await {
        Ok(client) => jobs::next_due(&client).await,
        Err(e) => Err(db::DbError::from(e)),
    };
    match due {
        Ok(due) => due.map(|d| tokio::time::Instant::now() + d.max(MIN_DUE_WAIT)),
        Err(e) => {
            tracing::warn!(error = %e, "reading the next due job failed; the next sweep tries again");
            None
        }
    }
}

/// The shortest self-wake, so rows runnable but locked by other claimers do not spin the loop.
const MIN_DUE_WAIT: Duration = Duration::from_millis(50);

/// Waits for in-flight jobs up to `grace`, then tells the rest to release their claims.
async fn drain(running: &mut JoinSet<()>, abandon: &CancellationToken, grace: Duration) {
    if running.is_empty() {
        return;
    }
    tracing::info!(
        jobs = running.len(),
        grace_secs = grace.as_secs(),
        "waiting for in-flight jobs"
    );
    let finished = tokio::time::timeout(grace, async { while running.join_next().await.is_some() {} }).await;
    if finished.is_err() {
        tracing::warn!(
            jobs = running.len(),
            "grace period over; releasing unfinished jobs"
        );
        abandon.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            while running.join_next().await.is_some() {}
        })
        .await;
    }
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "worker".to_owned())
}
