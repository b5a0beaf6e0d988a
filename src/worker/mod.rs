//! The worker: LISTEN for wake-ups, claim as many jobs as there are free threads (and, while
//! jobs are short, a few more that wait for a thread: `ahead`), run each on a blocking thread
//! while the async side renews its lease, and write the result back fenced.
//!
//! The loop is one `select!` over cancellation, notifications, a fallback sweep tick, the
//! moment the next backed-off row comes due, and finished jobs. NOTIFY is only a hint: the tick
//! and every (re)connect sweep the table too.

mod ahead;
mod cancels;
pub mod health;
mod job;
mod test_hooks;
mod writer;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::cancels::Cancels;
use self::health::ThreadHealth;
use crate::config::Config;
use crate::db::listener::{self, ListenEvent};
use crate::db::{self, control, jobs, variants};

/// The channel the insert/retry trigger notifies.
pub const JOBS_CHANNEL: &str = "image_jobs";

/// The channel the variants' insert/retry trigger notifies (`sql/0015`): kept apart so that a
/// worker asks `image_variants` only when a variant may be waiting.
pub const VARIANT_JOBS_CHANNEL: &str = "variant_jobs";

/// Shared by the worker loop and every job it runs.
pub(crate) struct WorkerContext {
    /// Pool for claims and result writes.
    pub pool: Pool,
    /// Settings (threads, lease, attempts, limits, default pipeline).
    pub config: Arc<Config>,
    /// This process's claim-holder name: host, pid and a random suffix, unique per start.
    pub worker_id: String,
    /// Threads stuck in jobs that timed out (read by `/healthz`).
    pub health: Arc<ThreadHealth>,
    /// Fires when shutdown starts.
    pub shutdown: CancellationToken,
    /// The running jobs, for cancel notifications.
    pub cancels: Arc<Cancels>,
    /// Writes the jobs' endings back in batches.
    pub writer: writer::Writer,
    /// The endings waiting to be written; a job gives its thread back once its result has
    /// room here.
    pub write_budget: writer::WriteBudget,
    /// Wakes the claim loop (a notification, or a thread given back before its job ended).
    pub wake: Arc<Notify>,
    /// The threads, the claimed jobs waiting for one, and how far to claim ahead.
    pub ahead: Arc<ahead::Ahead>,
}

/// How often a worker asks again whether a row that lost a lease is waiting, while the last
/// answer was yes: such a row needs the worker to stop claiming until its threads are free, and
/// then runs alone. A "no" holds until something can have changed it: a `lost` notification
/// (sent after every reap that took rows back, by whichever replica reaped), this worker's own
/// sweep, a backed-off row coming due, or a reconnect. So an idle worker's claim is not held up
/// by a question whose answer is almost always no (it was a round trip before every pickup).
const LOST_CHECK_EVERY: Duration = Duration::from_millis(250);

/// The `image_jobs` payload a reap sends once it took rows back (`reap_expired`).
pub const LOST_PAYLOAD: &str = "lost";

/// The claim loop's memory between turns.
struct ClaimState {
    /// When `lost_waiting` was last asked, and what it said.
    lost_checked: Option<(tokio::time::Instant, bool)>,
    /// Which table the next claim asks first: images and variants take turns, so neither a
    /// backlog of uploads nor one of variants keeps the other waiting.
    variants_first: bool,
    /// Whether `image_variants` may have runnable rows. Cleared when a variant claim comes back
    /// short; set again by a `variant_jobs` notification, the sweep, a due row's timer or a
    /// reconnect. Without it every other claim asked the (usually empty) variants table too, a
    /// second statement per tiny job. (Suspected of the queue's drop in scripts/bench, 2 298 ->
    /// 1 003 jobs/s, but the bench after this change still gave 1 065: that drop predates the
    /// variants, and its cause is still open.)
    variants_waiting: bool,
}

/// Runs the worker until `cancel` fires, then drains: in-flight jobs get
/// `SHUTDOWN_GRACE_SECS` to finish, and any still running are released to the queue.
pub async fn run(
    pool: Pool,
    url: String,
    config: Arc<Config>,
    health: Arc<ThreadHealth>,
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
    let writer = writer::Writer::spawn(pool.clone(), worker_id.clone());
    let wake = Arc::new(Notify::new());
    let ctx = Arc::new(WorkerContext {
        pool,
        writer,
        write_budget: writer::WriteBudget::new(threads),
        wake: wake.clone(),
        ahead: Arc::new(ahead::Ahead::new(threads, wake.clone())),
        config: config.clone(),
        worker_id,
        health,
        shutdown: cancel.clone(),
        cancels: Arc::new(Cancels::default()),
    });
    let mut claims = ClaimState {
        lost_checked: None,
        variants_first: false,
        variants_waiting: true,
    };
    // Set by the listener on `variant_jobs` (and on every (re)connect); read by the claim loop.
    let variant_hint = Arc::new(AtomicBool::new(true));
    // Set by a `lost` notification (and on every (re)connect): ask `lost_waiting` again.
    let lost_hint = Arc::new(AtomicBool::new(true));

    let listen_cancel = cancel.child_token();
    let listen = tokio::spawn(listener::run(
        url,
        vec![JOBS_CHANNEL, VARIANT_JOBS_CHANNEL, control::CANCEL_CHANNEL],
        {
            let (wake, cancels, hint) = (wake.clone(), ctx.cancels.clone(), variant_hint.clone());
            let lost = lost_hint.clone();
            move |event| match event {
                ListenEvent::Notification { channel, payload } if channel == control::CANCEL_CHANNEL => {
                    cancels.notified(&payload)
                }
                ListenEvent::Notification { channel, payload }
                    if channel == JOBS_CHANNEL && payload == LOST_PAYLOAD =>
                {
                    lost.store(true, Ordering::Relaxed);
                    wake.notify_one()
                }
                ListenEvent::Notification { channel, .. } if channel != VARIANT_JOBS_CHANNEL => {
                    wake.notify_one()
                }
                // A variant queued, or a reconnect (notifications may have been missed).
                ListenEvent::Notification { .. } => {
                    hint.store(true, Ordering::Relaxed);
                    wake.notify_one();
                }
                // A (re)connect: notifications may have been missed.
                _ => {
                    hint.store(true, Ordering::Relaxed);
                    lost.store(true, Ordering::Relaxed);
                    wake.notify_one();
                }
            }
        },
        listen_cancel.clone(),
    ));

    // One slot per row this worker holds: its threads' and those claimed ahead (`ahead`).
    let slots = Arc::new(Semaphore::new(ahead::Ahead::slots(threads)));
    // Cancelled after the grace period: jobs still running release their claims.
    let abandon = CancellationToken::new();
    let mut running = JoinSet::new();
    let mut sweep = tokio::time::interval(Duration::from_secs(config.sweep_secs));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // When a pending row with a future `run_after` (a retry backoff, a delayed job) comes due:
    // nothing notifies then, so the loop wakes itself instead of waiting for the next sweep.
    let mut next_due: Option<tokio::time::Instant> = None;

    loop {
        // Not `biased`: a worker finishing a job on every turn must not starve its own sweep.
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(finished) = running.join_next(), if !running.is_empty() => {
                if let Err(e) = finished {
                    tracing::error!(error = %e, "job task failed");
                }
            }
            _ = wake.notified() => {}
            _ = sweep.tick() => {
                reap_expired(&ctx).await;
                claims.lost_checked = None;
                claims.variants_waiting = true;
            }
            // The due row may be a variant (a backoff, a scheduled image's variants).
            _ = sleep_until(next_due), if next_due.is_some() => {
                claims.variants_waiting = true;
                claims.lost_checked = None;
            }
        }
        if lost_hint.swap(false, Ordering::Relaxed) {
            claims.lost_checked = None;
        }
        if variant_hint.swap(false, Ordering::Relaxed) {
            claims.variants_waiting = true;
        }
        // Raced with shutdown: each call is bounded, but a partition can make several in a row
        // wait their full timeout. A claim cut short is only ever a lease left to expire.
        next_due = tokio::select! {
            due = claim_while_free(&ctx, &slots, &mut running, &abandon, &mut claims) => due,
            _ = cancel.cancelled() => break,
        };
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
    let result = db::bounded!(ctx.pool, |client| {
        let images = jobs::reap_expired(&client, ctx.config.max_attempts).await?;
        let variants = variants::reap_expired_variants(&client, ctx.config.max_attempts).await?;
        Ok::<_, db::DbError>(images + variants)
    });
    match result {
        Ok(0) => {}
        Ok(n) => {
            crate::metrics::jobs_reaped(n);
            tracing::warn!(jobs = n, "took back jobs whose lease expired");
            // Every replica asks again whether a row that lost a lease waits (this one does
            // anyway: the sweep forgot its answer).
            let notified = db::bounded!(ctx.pool, |client| jobs::notify_lost(&client).await);
            if let Err(e) = notified {
                tracing::warn!(error = %e, "telling the other workers of the reaped jobs failed; their sweeps will see them");
            }
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

/// Claims jobs while threads are free and the queue has runnable rows, and when jobs are short
/// a few more to wait for a thread (`ahead`). When threads are left free, returns when the next
/// pending row comes due (`None`: nothing pending, all threads busy, or the database could not
/// say; a notification, a finished job or the sweep wakes the loop then).
///
/// A row that lost a lease comes first, but alone: once one is waiting, this worker claims
/// nothing more until it holds no row, then claims that row and gives it every slot, so
/// nothing else is claimed until its result is written. A process that dies of such a job then
/// takes no innocent job with it.
async fn claim_while_free(
    ctx: &Arc<WorkerContext>,
    slots: &Arc<Semaphore>,
    running: &mut JoinSet<()>,
    abandon: &CancellationToken,
    state: &mut ClaimState,
) -> Option<tokio::time::Instant> {
    let threads = ctx.config.worker_threads as usize;
    let all_slots = ahead::Ahead::slots(threads);
    let max_bytes = i64::try_from(ctx.config.max_upload_bytes).unwrap_or(i64::MAX);
    loop {
        let free = slots.available_permits();
        let held = all_slots - free;
        // Rows to hold now: one per thread, and those claimed ahead while jobs are short.
        let want = (threads + ctx.ahead.depth()).saturating_sub(held);
        // While at least a thread's worth of rows waits, let more finish first: claims of one
        // or two rows are what claiming ahead is for avoiding. (`ahead` wakes this loop when
        // the waiting fall below that.)
        if want == 0 || ctx.ahead.waiting() >= threads {
            return None;
        }
        if lost_waiting(ctx, state).await {
            // Drain first, endings still being written included (a job that kills this
            // process must not take their results with it); the next finished job wakes the
            // loop.
            if held > 0 || !ctx.write_budget.is_idle() {
                return None;
            }
            let claimed = db::bounded!(
                ctx.pool,
                |client| {
                    match jobs::claim_lost(&client, &ctx.worker_id, ctx.config.lease(), max_bytes).await? {
                        Some(job) => Ok::<_, db::DbError>(Some(job)),
                        None => Ok(variants::claim_variants(
                            &client,
                            variants::CLAIM_LOST_VARIANT,
                            &ctx.worker_id,
                            1,
                            ctx.config.lease(),
                            max_bytes,
                        )
                        .await?
                        .pop()),
                    }
                },
                |job| job.as_ref().map_or(0, held_bytes)
            );
            match claimed {
                Ok(Some(job)) => {
                    // Every slot was free a moment ago and only this loop takes them.
                    let Ok(permit) = slots.clone().try_acquire_many_owned(all_slots as u32) else {
                        tracing::error!(image_id = %job.id, "no free threads for a job to run alone");
                        return None;
                    };
                    tracing::info!(image_id = %job.id, "running a job that lost a lease before, alone");
                    let queued = ctx.ahead.queue(held_bytes(&job));
                    running.spawn(job::run(ctx.clone(), job, permit, queued, abandon.clone()));
                    return None;
                }
                // Taken by another replica meanwhile: claim as usual.
                Ok(None) => state.lost_checked = None,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming a job that lost a lease failed; the next sweep tries again");
                    return None;
                }
            }
        }
        let order = if !state.variants_waiting {
            Order::ImagesOnly
        } else if state.variants_first {
            Order::VariantsFirst
        } else {
            Order::ImagesFirst
        };
        state.variants_first = !state.variants_first;
        // A connection that just carried a very large original is closed, not pooled: its
        // buffers would keep that size for the life of the process (`held_bytes`).
        let take = jobs::Take {
            rows: want as i64,
            now: ctx.ahead.idle_threads() as i64,
            ahead_bytes: ctx.ahead.bytes_left() as i64,
        };
        let claimed = db::bounded!(
            ctx.pool,
            |client| claim_both(&client, ctx, take, max_bytes, order).await,
            |(jobs, _)| jobs.iter().map(held_bytes).max().unwrap_or(0)
        );
        let claimed = match claimed {
            Ok((claimed, variants_short)) => {
                if variants_short {
                    state.variants_waiting = false;
                }
                claimed
            }
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
            let queued = ctx.ahead.queue(held_bytes(&job));
            running.spawn(job::run(ctx.clone(), job, permit, queued, abandon.clone()));
        }
        if got < want {
            return next_due(ctx).await;
        }
    }
}

/// The bytes a claimed job's original moved through the claim's connection: from
/// `db::CLOSE_AFTER_BYTES` up it is closed. Not from 1 MiB up: a new connection's first claim
/// costs PostgreSQL its backend start and the compilation of every trigger function again,
/// measured at about 18 ms of server CPU per photo (scripts/bench, 1-20 MP photos: 54 against
/// 36 ms per photo, 1.74x the seed instead of 2.07x). Below that size each pooled connection
/// keeps at most twice it.
fn held_bytes(job: &jobs::Job) -> usize {
    job.original.as_ref().map_or(0, Vec::len)
}

/// Which tables a claim asks, in which order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    ImagesFirst,
    VariantsFirst,
    /// No variant is known to wait: `image_variants` is not asked.
    ImagesOnly,
}

/// Claims jobs as `take` says: from one table, then from the other for what is left. Also says
/// whether the variants' table was asked and came back short (nothing more runnable there).
async fn claim_both(
    client: &impl deadpool_postgres::GenericClient,
    ctx: &WorkerContext,
    take: jobs::Take,
    max_bytes: i64,
    order: Order,
) -> Result<(Vec<jobs::Job>, bool), db::DbError> {
    let lease = ctx.config.lease();
    let images = |take| jobs::claim_jobs(client, &ctx.worker_id, take, lease, max_bytes);
    let variants = |take| {
        variants::claim_variants(
            client,
            variants::CLAIM_VARIANTS,
            &ctx.worker_id,
            take,
            lease,
            max_bytes,
        )
    };
    let mut short = false;
    let mut claimed = match order {
        Order::VariantsFirst => {
            let v = variants(take).await?;
            short = (v.len() as i64) < take.rows;
            v
        }
        Order::ImagesFirst | Order::ImagesOnly => images(take).await?,
    };
    let rest = rest_of(take, &claimed);
    if rest.rows > 0 {
        match order {
            Order::VariantsFirst => claimed.extend(images(rest).await?),
            Order::ImagesFirst => {
                let v = variants(rest).await?;
                short = (v.len() as i64) < rest.rows;
                claimed.extend(v);
            }
            Order::ImagesOnly => {}
        }
    }
    Ok((claimed, short))
}

/// What is left of `take` once `claimed` was taken: the second table's claim starts as many
/// rows at once as the first did not, and loads ahead what the first did not use.
fn rest_of(take: jobs::Take, claimed: &[jobs::Job]) -> jobs::Take {
    let got = claimed.len() as i64;
    let bytes: i64 = claimed.iter().map(|j| j.original_bytes).sum();
    jobs::Take {
        rows: take.rows - got,
        now: (take.now - got).max(0),
        ahead_bytes: take.ahead_bytes.saturating_sub(bytes),
    }
}

/// Whether a row that lost a lease is runnable, asked at most every [`LOST_CHECK_EVERY`] (the
/// sweep's reap forgets the answer, so what it takes back is seen at once).
async fn lost_waiting(ctx: &WorkerContext, state: &mut ClaimState) -> bool {
    if let Some((at, waiting)) = state.lost_checked {
        if !waiting || at.elapsed() < LOST_CHECK_EVERY {
            return waiting;
        }
    }
    let waiting = db::bounded!(ctx.pool, |client| jobs::lost_waiting(&client).await);
    let waiting = waiting.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "asking for jobs that lost a lease failed");
        false
    });
    state.lost_checked = Some((tokio::time::Instant::now(), waiting));
    waiting
}

/// When the earliest pending row becomes runnable, if one is pending. A row already runnable
/// here lost a race to another replica's claim or was added since: try again shortly.
async fn next_due(ctx: &WorkerContext) -> Option<tokio::time::Instant> {
    let due = db::bounded!(ctx.pool, |client| jobs::next_due(&client).await);
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

/// How long shutdown waits, after the grace period, for unfinished jobs to be released.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

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
        // Releases are bounded by `db::CALL_TIMEOUT`; past this the lease sweep does it.
        let _ = tokio::time::timeout(RELEASE_WAIT, async {
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
