//! One claimed job: wait for a thread (when it was claimed ahead), process on it, renew the
//! lease meanwhile, write back fenced.
//!
//! The job's slot (its semaphore permit) is held until its result has room in the write budget
//! (`writer`), so rows in flight stay bounded while the database is slow; and past that, until
//! the thread itself returns, so a job that outlived `JOB_TIMEOUT_SECS` keeps its slot taken.
//! The thread is held by the blocking task itself (`ahead::Thread`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::ahead::Queued;
use super::test_hooks;
use super::writer::Ended;
use super::WorkerContext;
use crate::backoff;
use crate::db;
use crate::db::jobs::{self, Failure, Fence, Job};
use crate::imaging::facts::UploadFacts;
use crate::imaging::{self, Pipeline, Processed};
use crate::presets::PresetPipeline;
use crate::states::JobOutcome;

/// How processing ended, before it is written back.
pub(crate) enum Outcome {
    /// The result, and the upload-time facts when the row had none (a SQL INSERT made it).
    Done(Box<Processed>, Option<UploadFacts>),
    /// Permanent: this input will never succeed with this pipeline.
    Failed(Failure),
    /// Ran past `JOB_TIMEOUT_SECS`: written as a failure, counted as `timed_out`.
    TimedOut(Failure),
}

impl Outcome {
    /// The bytes its write-back carries.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            Outcome::Done(out, _) => out.bytes.len() + out.thumbnail.len(),
            Outcome::Failed(f) | Outcome::TimedOut(f) => f.message.len(),
        }
    }
}

/// The processing: waiting for a thread, then on it. Kept past the deadline when a job ran past
/// it and goes on on its thread.
type StillRunning = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Result<
                    Result<(Processed, Option<UploadFacts>), imaging::ImagingError>,
                    tokio::task::JoinError,
                >,
            > + Send,
    >,
>;

/// What `jobs_total` and `job_processing_seconds` record once the write-back says how the job
/// really ended: a result the fence refuses counts as `fenced`, not `completed`.
struct Measured<'a> {
    family: &'static str,
    seconds: f64,
    /// A variant job's preset, counted per preset too.
    preset: Option<&'a str>,
}

impl Measured<'_> {
    fn record(&self, outcome: JobOutcome) {
        crate::metrics::job_finished(outcome, self.family, self.seconds);
        if let Some(preset) = self.preset {
            crate::metrics::variant_finished(preset, outcome, self.seconds);
        }
    }
}

pub(super) async fn run(
    ctx: Arc<WorkerContext>,
    job: Job,
    mut permit: OwnedSemaphorePermit,
    queued: Queued,
    abandon: CancellationToken,
) {
    // Registered before anything runs, so a cancel notified from now on reaches this job (a
    // variant's too: cancelling an image cancels its variants, sql/0015).
    let cancel = ctx.cancels.register(job.id);
    // A variant's key, owned here so the fence can borrow it while `job` moves on.
    let variant = job.variant.as_ref().map(|v| (v.preset.clone(), v.format));
    let span = tracing::info_span!("job", image_id = %job.id, preset = variant.as_ref().map(|v| v.0.as_str()), attempt = job.attempt, claim = job.claim, worker = %ctx.worker_id);
    // A row that lost a lease before keeps everything it holds until its ending is written,
    // even with one thread (where running alone takes no extra slot).
    let alone = job.lost_before;
    async move {
        let pickup_ms = (job.claimed_at - job.ready_at).num_milliseconds();
        crate::metrics::pickup_latency(pickup_ms as f64 / 1000.0);
        tracing::debug!(
            pickup_ms,
            bytes = job.original_bytes,
            lost_before = job.lost_before,
            "claimed"
        );
        let fence = Fence {
            id: job.id,
            worker: &ctx.worker_id,
            claim: job.claim,
            variant: variant
                .as_ref()
                .map(|(preset, format)| (preset.as_str(), *format)),
        };
        let (outcome, still_running) =
            process_with_heartbeat(&ctx, &fence, job, queued, &abandon, cancel.token()).await;
        if let Some((outcome, measured)) = outcome {
            // A job that ran alongside others gives its thread back as soon as its result has
            // room in the write budget: the claim loop takes the next job while this ending
            // waits for its batch to commit (`writer`). A job run alone keeps every slot until
            // its ending is written, and a timed-out one its thread until the thread returns.
            let mut written_budget = None;
            if still_running.is_none() && permit.num_permits() == 1 && !alone {
                if let Some(budget) = ctx.write_budget.reserve(outcome.bytes()).await {
                    written_budget = Some(budget);
                    drop(permit.split(1));
                    ctx.wake.notify_one();
                }
            }
            write_back(&ctx, &fence, outcome, &measured, &abandon).await;
            drop(written_budget);
        }
        // A job run alone holds every slot; once its outcome is written only its own thread
        // is still in use (by a timed-out job that has not returned).
        drop(permit.split(permit.num_permits().saturating_sub(1)));
        if let Some(work) = still_running {
            // The row is failed already; only the thread is left. Shutdown does not wait for
            // it: the process exits without joining blocking threads (main.rs).
            let _stuck = ctx.health.mark_stuck();
            tokio::select! {
                _ = work => tracing::info!("the timed-out job's thread returned"),
                _ = ctx.shutdown.cancelled() => {}
            }
        }
        drop(permit);
    }
    .instrument(span)
    .await
}

/// Runs the pipeline on a blocking thread, renewing the lease from this async task meanwhile.
/// The outcome is `None` when the job was abandoned (shutdown) or the claim was lost; the
/// handle is `Some` when the job ran past `JOB_TIMEOUT_SECS` and its thread is still busy.
async fn process_with_heartbeat<'f>(
    ctx: &WorkerContext,
    fence: &Fence<'f>,
    job: Job,
    queued: Queued,
    abandon: &CancellationToken,
    cancel: &tokio::sync::Notify,
) -> (Option<(Outcome, Measured<'f>)>, Option<StillRunning>) {
    let preset = fence.variant.map(|(preset, _)| preset);
    // Fails the job before anything was processed: no family to name.
    let refuse = |code: &'static str, message: String| {
        let measured = Measured {
            family: "unknown",
            seconds: 0.0,
            preset,
        };
        (Some((Outcome::Failed(Failure { code, message }), measured)), None)
    };
    let pipeline = job_pipeline(ctx, &job);
    let Some(bytes) = job.original else {
        return refuse(
            "payload_too_large",
            format!(
                "the stored image is {} bytes, over MAX_UPLOAD_BYTES ({}); it was not read",
                job.original_bytes, ctx.config.max_upload_bytes
            ),
        );
    };
    let pipeline = match pipeline {
        Ok(pipeline) => pipeline,
        Err(failure) => return refuse(failure.code, failure.message),
    };
    let family = crate::metrics::family(&pipeline);
    let overlays = match load_watermarks(ctx, &pipeline).await {
        Ok(overlays) => overlays,
        // Failed, not released: a release gives the attempt back and the row would be claimed
        // again at once, so a read that keeps failing (too slow, say) would loop for ever.
        Err(failure) => {
            let measured = Measured {
                family,
                seconds: 0.0,
                preset,
            };
            return (Some((Outcome::Failed(failure), measured)), None);
        }
    };
    let limits = ctx.config.limits();
    let needs_upload_facts = job.needs_upload_facts;
    let lost_before = job.lost_before;
    let is_variant = job.variant.is_some();
    let span = tracing::Span::current();
    // Set when this job was cancelled: the thread stops at its next safe point.
    let stop = Arc::new(AtomicBool::new(false));
    let (stop_thread, stop_waiting) = (stop.clone(), stop.clone());
    // When the job got its thread: its deadline and its measured time start then.
    let started = Arc::new(std::sync::OnceLock::new());
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let on_thread = started.clone();
    let mut work: StillRunning = Box::pin(async move {
        let thread = queued.thread().await;
        let _ = on_thread.set(std::time::Instant::now());
        let _ = started_tx.send(());
        if stop_waiting.load(Ordering::Relaxed) {
            // Cancelled while it waited: nothing to run.
            return Ok(Err(imaging::ImagingError::Cancelled));
        }
        tokio::task::spawn_blocking(move || {
            // Given back when this thread returns, a timed-out job's included.
            let _thread = thread;
            let _entered = span.enter();
            // `imaging::process` turns decoder panics into errors itself; a panic anywhere else on
            // this thread ends the task with a `JoinError`, a failure of this job, not the worker.
            test_hooks::before_processing(&bytes, &stop_thread);
            // A variant needs no thumbnail or facts: its image's own job makes them.
            let process = if is_variant {
                imaging::process_output_until
            } else {
                imaging::process_until
            };
            let out = process(&bytes, &pipeline, &limits, &overlays, &stop_thread)?;
            Ok((out, needs_upload_facts.then(|| UploadFacts::read(&bytes))))
        })
        .await
    });
    let seconds = || {
        started
            .get()
            .map_or(0.0, |at: &std::time::Instant| at.elapsed().as_secs_f64())
    };
    let lease = ctx.config.lease();
    let every = lease / 3;
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let timeout = ctx.config.job_timeout();
    // `JOB_TIMEOUT_SECS` counts from the thread's start, not from the claim.
    let deadline = async {
        match started_rx.await {
            Ok(()) => tokio::time::sleep(timeout).await,
            Err(_) => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    // How long a job claimed ahead waits for a thread before it is handed back.
    let give_up_waiting = tokio::time::sleep(super::ahead::MAX_WAIT);
    tokio::pin!(give_up_waiting);
    let (mut lost, mut shutdown_seen, mut waited_out) = (false, false, false);
    // A cancel notification, checked against the row (NOTIFY is a hint: anyone may send one),
    // held: the row was cancelled.
    let mut cancelled = false;
    let result = loop {
        tokio::select! {
            result = &mut work => break result,
            // Also during a shutdown's grace period: a job past its deadline then ends
            // `failed` rather than being released to run out its time again elsewhere.
            _ = &mut deadline => {
                let measured = Measured { family, seconds: seconds(), preset };
                if lost {
                    measured.record(if cancelled { JobOutcome::Cancelled } else { JobOutcome::Fenced });
                    return (None, Some(work));
                }
                tracing::warn!(timeout_secs = timeout.as_secs(), "job timed out; its thread runs on until it returns");
                let failure = Failure {
                    code: "job_timeout",
                    message: format!(
                        "processing took longer than JOB_TIMEOUT_SECS ({} s) and was stopped",
                        timeout.as_secs()
                    ),
                };
                return (Some((Outcome::TimedOut(failure), measured)), Some(work));
            }
            _ = heartbeat.tick(), if !lost => {
                match db::bounded!(ctx.pool, |client| jobs::renew_lease(&client, fence, lease).await) {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!("claim lost (lease expired, row deleted, retried or cancelled); stopping, result will be dropped");
                        // Nobody wants the result: the thread stops at its next safe point.
                        stop.store(true, Ordering::Relaxed);
                        lost = true;
                    }
                    Err(e) => tracing::warn!(error = %e, "renewing the lease failed"),
                }
            }
            _ = cancel.notified(), if !lost => {
                // The cancel made the row `cancelled`, so our claim is gone: a renewal that
                // matches nothing confirms it (a lost claim is dropped for whatever reason).
                match db::bounded!(ctx.pool, |client| jobs::renew_lease(&client, fence, lease).await) {
                    Ok(false) => {
                        tracing::info!("cancelled; stopping at the next safe point");
                        stop.store(true, Ordering::Relaxed);
                        (lost, cancelled) = (true, true);
                    }
                    Ok(true) => tracing::warn!("a cancel notification for a job whose claim still holds; ignored"),
                    // The next heartbeat finds out.
                    Err(e) => tracing::warn!(error = %e, "checking a cancelled job's claim failed"),
                }
            }
            _ = abandon.cancelled() => {
                let measured = Measured { family, seconds: seconds(), preset };
                measured.record(JobOutcome::Released);
                release(ctx, fence, lost_before).await;
                return (None, None);
            }
            // A job claimed ahead that has no thread yet is handed back as soon as shutdown
            // starts: the grace period is for the jobs already running. (One that finds a
            // thread free is as good as running: it takes the thread at once.) A branch's
            // condition is read when the `select!` starts waiting, so `started` is read again
            // here: only this task polls `work`, so no thread can be taken meanwhile.
            _ = ctx.shutdown.cancelled(), if !shutdown_seen && !lost => {
                shutdown_seen = true;
                if started.get().is_none() && !ctx.ahead.thread_free() {
                    Measured { family, seconds: 0.0, preset }.record(JobOutcome::Released);
                    release(ctx, fence, lost_before).await;
                    return (None, None);
                }
            }
            // Every thread stayed busy (long jobs, or one stuck past its timeout): another
            // replica may be idle.
            _ = &mut give_up_waiting, if !waited_out && !lost => {
                waited_out = true;
                if started.get().is_none() {
                    tracing::info!(waited_ms = super::ahead::MAX_WAIT.as_millis() as u64, "no thread came free for a job claimed ahead; handing it back");
                    ctx.ahead.stalled();
                    Measured { family, seconds: 0.0, preset }.record(JobOutcome::Released);
                    release(ctx, fence, lost_before).await;
                    return (None, None);
                }
            }
        }
    };
    let measured = Measured {
        family,
        seconds: seconds(),
        preset,
    };
    if lost {
        if cancelled {
            measured.record(JobOutcome::Cancelled);
            tracing::info!("cancelled job stopped; nothing written");
        } else {
            measured.record(JobOutcome::Fenced);
        }
        return (None, None);
    }
    let outcome = match result {
        Ok(Ok((out, facts))) => Outcome::Done(Box::new(out), facts),
        Ok(Err(e)) => Outcome::Failed(Failure {
            code: e.code(),
            message: e.to_string(),
        }),
        Err(e) => {
            let what = if e.is_panic() {
                let panic = e.into_panic();
                panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into())
            } else {
                e.to_string()
            };
            tracing::error!(panic = %what, "image processing crashed");
            Outcome::Failed(Failure {
                code: "processing_crashed",
                message: format!("the image could not be processed (processing crashed: {what})"),
            })
        }
    };
    (Some((outcome, measured)), None)
}

/// Writes the outcome, retrying with exponential backoff while the database is unavailable
/// or refuses the write (a failed trigger, a serialization failure, a statement timeout...),
/// for up to a lease: past it another worker may own the row, and the fence makes any late
/// write a no-op. Giving up leaves the job to the lease sweep.
/// Shutdown's grace period running out (`abandon`) ends the retries too: the lease then
/// expires and the sweep takes the job back.
async fn write_back(
    ctx: &WorkerContext,
    fence: &Fence<'_>,
    outcome: Outcome,
    measured: &Measured<'_>,
    abandon: &CancellationToken,
) {
    let deadline = tokio::time::Instant::now() + ctx.config.lease();
    let mut attempt = 0;
    let outcome = Arc::new(outcome);
    loop {
        let write = ctx.writer.write(Ended {
            id: fence.id,
            claim: fence.claim,
            variant: fence.variant.map(|(preset, format)| (preset.to_owned(), format)),
            outcome: outcome.clone(),
        });
        let result = tokio::select! {
            result = write => result,
            _ = abandon.cancelled() => {
                measured.record(JobOutcome::Unwritten);
                tracing::error!("shutdown: giving up writing the result; the lease will expire and the job be retried");
                return;
            }
        };
        match result {
            Ok(true) => {
                match &*outcome {
                    Outcome::Done(out, _) => {
                        measured.record(JobOutcome::Completed);
                        tracing::info!(bytes = out.bytes.len(), "completed")
                    }
                    Outcome::Failed(failure) => {
                        measured.record(JobOutcome::Failed);
                        tracing::info!(code = failure.code, error = %failure.message, "failed")
                    }
                    Outcome::TimedOut(failure) => {
                        measured.record(JobOutcome::TimedOut);
                        tracing::info!(code = failure.code, error = %failure.message, "failed")
                    }
                }
                return;
            }
            Ok(false) => {
                measured.record(JobOutcome::Fenced);
                tracing::warn!("fenced off: another claim holds this row now; result dropped");
                return;
            }
            Err(e) if tokio::time::Instant::now() < deadline => {
                let wait = backoff::delay(attempt, Duration::from_millis(100), Duration::from_secs(3));
                let wait = wait.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "writing the result failed");
                attempt += 1;
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = abandon.cancelled() => {
                        measured.record(JobOutcome::Unwritten);
                        tracing::error!("shutdown: giving up writing the result; the lease will expire and the job be retried");
                        return;
                    }
                }
            }
            Err(e) => {
                measured.record(JobOutcome::Unwritten);
                tracing::error!(error = %e, "writing the result failed; the lease will expire and the job be retried");
                return;
            }
        }
    }
}

/// The pipeline a job runs: an image's stored one (or the default), or a variant's preset in
/// the variant's format. A pipeline stored by SQL was never checked: it may fail here.
fn job_pipeline(ctx: &WorkerContext, job: &Job) -> Result<Pipeline, Failure> {
    if let Some(variant) = &job.variant {
        let Some(stored) = &variant.preset_pipeline else {
            return Err(Failure {
                code: "unknown_preset",
                message: format!("there is no preset named \"{}\"", variant.preset),
            });
        };
        return PresetPipeline::from_json(stored)
            .map(|p| p.for_variant(variant.format))
            .map_err(|e| Failure {
                code: "invalid_pipeline",
                message: format!("the preset \"{}\" has an invalid pipeline: {e}", variant.preset),
            });
    }
    match job.pipeline.as_ref().map(Pipeline::from_json).transpose() {
        Ok(p) => Ok(p.unwrap_or_else(|| ctx.config.pipeline_or_default())),
        Err(e) => Err(Failure {
            code: "invalid_pipeline",
            message: format!("invalid pipeline: {e}"),
        }),
    }
}

/// The images the pipeline draws as watermarks. One that is gone (deleted, retried, over
/// `MAX_UPLOAD_BYTES`) is simply absent: imaging then fails the job saying so. A database that
/// cannot answer fails the job too (`watermark_unavailable`; a retry runs it again).
async fn load_watermarks(ctx: &WorkerContext, pipeline: &Pipeline) -> Result<imaging::Overlays, Failure> {
    let ids = pipeline.watermark_ids();
    if ids.is_empty() {
        return Ok(imaging::Overlays::new());
    }
    let max_bytes = i64::try_from(ctx.config.max_upload_bytes).unwrap_or(i64::MAX);
    match db::bounded!(ctx.pool, |client| db::images::watermarks(
        &client, &ids, max_bytes
    )
    .await)
    {
        Ok(rows) => Ok(rows.into_iter().collect()),
        Err(e) => {
            tracing::warn!(error = %e, "loading the watermark images failed");
            Err(Failure {
                code: "watermark_unavailable",
                message: format!("the watermark images could not be read: {e}"),
            })
        }
    }
}

/// Hands the claim back so another replica can take it at once. A row that lost a lease before
/// is claimed apart (alone), so the other workers are told to look for it.
async fn release(ctx: &WorkerContext, fence: &Fence<'_>, lost_before: bool) {
    let result = db::bounded!(ctx.pool, |client| {
        let released = jobs::release_job(&client, fence).await?;
        if released && lost_before {
            jobs::notify_lost(&client).await?;
        }
        Ok::<_, db::DbError>(released)
    });
    match result {
        Ok(_) => tracing::info!("released unfinished job"),
        Err(e) => tracing::warn!(error = %e, "releasing the job failed; its lease will expire"),
    }
}
