//! Webhooks from the transactional outbox (`sql/0014_webhooks.sql`): the delivery loop that
//! runs beside the image worker, claims due deliveries (`FOR UPDATE SKIP LOCKED`, leased and
//! fenced like jobs), POSTs each signed the Standard Webhooks way, records the attempt and
//! retries with exponential backoff and jitter up to `WEBHOOK_MAX_ATTEMPTS`.
//!
//! Layout: `address` (which addresses may be reached, and the resolver that enforces it),
//! `signing` (the signature), `payload` (the body), `send` (one HTTP attempt).
//!
//! Deliveries are async tasks on the runtime, at most [`MAX_IN_FLIGHT`] at once: they never
//! take the image worker's blocking threads or its slots, and a slow receiver costs a task
//! until `WEBHOOK_TIMEOUT_SECS`. Wake-ups come from the `image_status` notifications every
//! finished image already sends; NOTIFY is only a hint, and a sweep timer and the moment the
//! next backed-off delivery comes due wake the loop too.

pub mod address;
pub mod payload;
pub mod send;
pub mod signing;

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use self::send::{Sender, Sent};
use self::signing::Signer;
use crate::config::Config;
use crate::db::webhooks::{self as outbox, Attempt, AttemptOutcome, Delivery};
use crate::db::{self, listener};

/// Deliveries in flight per process.
pub const MAX_IN_FLIGHT: usize = 8;

/// The channel finished images are announced on (`id:status`), by the worker after its commit.
const STATUS_CHANNEL: &str = "image_status";

/// Without a notification to say so, a claim that found nothing is not repeated sooner than
/// this: every finished image notifies, with or without a webhook, and thousands a second must
/// not become thousands of claims.
const MIN_CLAIM_GAP: Duration = Duration::from_millis(100);

/// The longest wait between attempts, whatever the attempt number.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// What every delivery task needs.
struct Context {
    pool: Pool,
    sender: Sender,
    /// This process's claim-holder name.
    worker_id: String,
    max_attempts: i32,
    backoff_base: Duration,
    /// `DEFAULT_PIPELINE` as JSON: the effective pipeline of an image without its own.
    default_pipeline: serde_json::Value,
}

/// Runs the delivery loop until `cancel`, then lets in-flight deliveries finish (bounded by the
/// timeout) and hands any still claimed back.
pub async fn run(
    pool: Pool,
    url: String,
    config: Arc<Config>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let signer = config
        .webhook_secret
        .as_deref()
        .map(Signer::from_secret)
        .transpose()?;
    let ctx = Arc::new(Context {
        pool,
        sender: Sender::new(signer, config.webhook_allow_private, config.webhook_timeout())?,
        worker_id: format!(
            "webhooks-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ),
        max_attempts: config.webhook_max_attempts,
        backoff_base: Duration::from_millis(config.webhook_retry_base_ms),
        default_pipeline: serde_json::to_value(config.pipeline_or_default())?,
    });
    let lease = config.webhook_timeout() * 2 + Duration::from_secs(5);

    let wake = Arc::new(Notify::new());
    let listen_cancel = cancel.child_token();
    let listen = tokio::spawn(listener::run(
        url,
        vec![STATUS_CHANNEL],
        {
            let wake = wake.clone();
            move |event| {
                let finished = match &event {
                    listener::ListenEvent::Connected => true,
                    listener::ListenEvent::Notification { payload, .. } => {
                        payload.ends_with(":completed") || payload.ends_with(":failed")
                    }
                };
                if finished {
                    wake.notify_one();
                }
            }
        },
        listen_cancel.clone(),
    ));

    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut running = JoinSet::new();
    let mut sweep = tokio::time::interval(Duration::from_secs(config.sweep_secs));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_due: Option<tokio::time::Instant> = None;
    let mut last_empty: Option<Instant> = None;
    tracing::info!(worker_id = %ctx.worker_id, "webhook delivery started");

    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(finished) = running.join_next(), if !running.is_empty() => {
                if let Err(e) = finished {
                    tracing::error!(error = %e, "webhook delivery task failed");
                }
            }
            _ = wake.notified() => {
                if let Some(at) = last_empty.filter(|at| at.elapsed() < MIN_CLAIM_GAP) {
                    // Claim once the gap is over rather than now.
                    let at = tokio::time::Instant::from_std(at + MIN_CLAIM_GAP);
                    next_due = Some(next_due.map_or(at, |due| due.min(at)));
                    continue;
                }
            }
            _ = sweep.tick() => reap(&ctx).await,
            _ = sleep_until(next_due), if next_due.is_some() => {}
        }
        next_due = tokio::select! {
            due = claim_while_free(&ctx, &slots, &mut running, lease, &mut last_empty) => due,
            _ = cancel.cancelled() => break,
        };
    }

    listen_cancel.cancel();
    // In-flight deliveries get the shutdown grace (each ends within WEBHOOK_TIMEOUT_SECS and
    // its write anyway); any still running then are aborted and their claims handed back.
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    if tokio::time::timeout(grace, async { while running.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        running.shutdown().await;
    }
    match db::bounded!(ctx.pool, |client| outbox::release_deliveries(
        &client,
        &ctx.worker_id
    )
    .await)
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(deliveries = n, "handed unfinished webhook deliveries back"),
        Err(e) => {
            tracing::warn!(error = %e, "handing webhook deliveries back failed; their leases will expire")
        }
    }
    let _ = listen.await;
    tracing::info!("webhook delivery stopped");
    Ok(())
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Takes back deliveries whose worker vanished.
async fn reap(ctx: &Context) {
    match db::bounded!(ctx.pool, |client| outbox::reap_deliveries(
        &client,
        ctx.max_attempts
    )
    .await)
    {
        Ok(0) => {}
        Ok(n) => tracing::warn!(deliveries = n, "took back webhook deliveries whose lease expired"),
        Err(e) => tracing::warn!(error = %e, "webhook lease sweep failed"),
    }
}

/// Claims due deliveries while slots are free; returns when the next one comes due (`None`:
/// none waiting, all slots busy, or the database could not say).
async fn claim_while_free(
    ctx: &Arc<Context>,
    slots: &Arc<Semaphore>,
    running: &mut JoinSet<()>,
    lease: Duration,
    last_empty: &mut Option<Instant>,
) -> Option<tokio::time::Instant> {
    loop {
        let free = slots.available_permits();
        if free == 0 {
            return None;
        }
        let claimed = db::bounded!(ctx.pool, |client| outbox::claim_deliveries(
            &client,
            &ctx.worker_id,
            free as i64,
            lease
        )
        .await);
        let claimed = match claimed {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, "claiming webhook deliveries failed; the next sweep tries again");
                return None;
            }
        };
        let got = claimed.len();
        *last_empty = (got == 0).then(Instant::now);
        for delivery in claimed {
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                // Only this loop takes permits; the lease sweep hands the row back.
                tracing::error!(delivery = delivery.id, "no free slot for a claimed delivery");
                return None;
            };
            let span = tracing::info_span!(
                "webhook",
                webhook_id = %delivery.webhook_id,
                image_id = %delivery.image_id,
                attempt = delivery.attempt
            );
            running.spawn(deliver(ctx.clone(), delivery, permit).instrument(span));
        }
        if got < free {
            let due = db::bounded!(ctx.pool, |client| outbox::next_delivery_due(&client).await);
            return match due {
                Ok(due) => due.map(|d| tokio::time::Instant::now() + d.max(Duration::from_millis(50))),
                Err(e) => {
                    tracing::warn!(error = %e, "reading the next due delivery failed");
                    None
                }
            };
        }
    }
}

/// One attempt of one delivery, recorded (fenced) with its outcome.
async fn deliver(ctx: Arc<Context>, delivery: Delivery, _permit: OwnedSemaphorePermit) {
    let at = chrono::Utc::now();
    let started = Instant::now();
    let sent = match payload::body(&delivery.event, &delivery.image, &ctx.default_pipeline) {
        Ok(body) => ctx.sender.send(&delivery.url, &delivery.webhook_id, &body).await,
        // Only a snapshot this build cannot read; retrying would not help.
        Err(e) => Sent::Refused(format!("the event's image snapshot is unreadable: {e}")),
    };
    let duration = started.elapsed();
    let last = delivery.attempt >= ctx.max_attempts;
    let (outcome, status_code, error) = match sent {
        Sent::Answered { status } if (200..300).contains(&status) => {
            (AttemptOutcome::Delivered, Some(status), None)
        }
        Sent::Answered { status } => (
            if last {
                AttemptOutcome::Failed
            } else {
                AttemptOutcome::Retried
            },
            Some(status),
            Some(format!("the receiver answered {status}")),
        ),
        Sent::Error(e) => (
            if last {
                AttemptOutcome::Failed
            } else {
                AttemptOutcome::Retried
            },
            None,
            Some(e),
        ),
        Sent::Refused(e) => (AttemptOutcome::Refused, None, Some(e)),
    };
    let retry_in = crate::backoff::delay(
        u32::try_from(delivery.attempt - 1).unwrap_or(0),
        ctx.backoff_base,
        MAX_BACKOFF,
    );
    let attempt = Attempt {
        outcome,
        at,
        duration,
        status_code: status_code.map(i32::from),
        error: error.as_deref(),
        retry_in,
    };
    // Counted before the attempt is recorded: whoever reads the delivery log as settled then
    // finds the metrics counted too (a test read the log, then /metrics, between the two).
    crate::metrics::webhook_attempt(outcome.as_str(), duration.as_secs_f64());
    if outcome == AttemptOutcome::Delivered {
        let latency = (chrono::Utc::now() - delivery.created_at)
            .num_milliseconds()
            .max(0) as f64
            / 1000.0;
        crate::metrics::webhook_delivered(latency);
    }
    let recorded = db::bounded!(ctx.pool, |client| outbox::record_attempt(
        &client,
        &delivery,
        &ctx.worker_id,
        &attempt
    )
    .await);
    log_outcome(&recorded, &attempt);
}

/// One line per attempt, in the delivery's span.
fn log_outcome(recorded: &Result<bool, db::DbError>, attempt: &Attempt<'_>) {
    let (error, status) = (attempt.error, attempt.status_code);
    match (recorded, attempt.outcome) {
        (Ok(true), AttemptOutcome::Delivered) => tracing::info!(status, "webhook delivered"),
        (Ok(true), AttemptOutcome::Retried) => {
            let retry_in_ms = attempt.retry_in.as_millis() as u64;
            tracing::info!(status, error, retry_in_ms, "webhook attempt failed; retrying");
        }
        (Ok(true), outcome) => tracing::warn!(status, error, outcome = outcome.as_str(), "webhook given up"),
        (Ok(false), _) => tracing::warn!(
            "webhook claim lost before its attempt was recorded (lease expired or image deleted)"
        ),
        (Err(e), _) => {
            tracing::warn!(error = %e, "recording a webhook attempt failed; the lease sweep will retry it")
        }
    }
}
