//! One claimed job: process on a blocking thread, renew the lease meanwhile, write back fenced.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::WorkerContext;
use crate::backoff;
use crate::db::jobs::{self, Completion, Failure, Fence, Job};
use crate::db::DbError;
use crate::imaging::{self, Pipeline, Processed};
use crate::states::JobOutcome;

/// How processing ended, before it is written back.
enum Outcome {
    Done(Processed),
    /// Permanent: this input will never succeed with this pipeline.
    Failed(Failure),
}

/// What `jobs_total` and `job_processing_seconds` record once the write-back says how the job
/// really ended: a result the fence refuses counts as `fenced`, not `completed`.
struct Measured {
    family: &'static str,
    seconds: f64,
}

impl Measured {
    fn record(&self, outcome: JobOutcome) {
        crate::metrics::job_finished(outcome, self.family, self.seconds);
    }
}

pub(super) async fn run(
    ctx: Arc<WorkerContext>,
    job: Job,
    permit: OwnedSemaphorePermit,
    abandon: CancellationToken,
) {
    let span = tracing::info_span!("job", image_id = %job.id, attempt = job.attempt, claim = job.claim, worker = %ctx.worker_id);
    async move {
        crate::metrics::threads_busy(1);
        let pickup_ms = (job.claimed_at - job.ready_at).num_milliseconds();
        crate::metrics::pickup_latency(pickup_ms as f64 / 1000.0);
        tracing::debug!(pickup_ms, bytes = job.original.len(), "claimed");
        let fence = Fence {
            id: job.id,
            worker: &ctx.worker_id,
            claim: job.claim,
        };
        let Some((outcome, measured)) = process_with_heartbeat(&ctx, &fence, job, &abandon).await else {
            drop(permit);
            crate::metrics::threads_busy(-1);
            return;
        };
        drop(permit);
        crate::metrics::threads_busy(-1);
        write_back(&ctx, &fence, outcome, &measured).await;
    }
    .instrument(span)
    .await
}

/// Runs the pipeline on a blocking thread, renewing the lease from this async task meanwhile.
/// `None` when the job was abandoned (shutdown) or the claim was lost.
async fn process_with_heartbeat(
    ctx: &WorkerContext,
    fence: &Fence<'_>,
    job: Job,
    abandon: &CancellationToken,
) -> Option<(Outcome, Measured)> {
    let pipeline = match job.pipeline.as_ref().map(Pipeline::from_json).transpose() {
        Ok(p) => p.unwrap_or_else(|| ctx.config.pipeline_or_default()),
        // Stored by SQL and never checked: no family to name, nothing processed.
        Err(e) => {
            let measured = Measured {
                family: "unknown",
                seconds: 0.0,
            };
            let failure = Failure {
                code: "invalid_pipeline",
                message: format!("invalid pipeline: {e}"),
            };
            return Some((Outcome::Failed(failure), measured));
        }
    };
    let (family, started) = (crate::metrics::family(&pipeline), std::time::Instant::now());
    let limits = ctx.config.limits();
    let span = tracing::Span::current();
    let mut work = tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let bytes = job.original;
        // `imaging::process` turns decoder panics into errors itself; a panic anywhere else on
        // this thread ends the task with a `JoinError`, a failure of this job, not the worker.
        test_hooks::before_processing(&bytes);
        imaging::process(&bytes, &pipeline, &limits)
    });
    let lease = ctx.config.lease();
    let every = lease / 3;
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut lost = false;
    let result = loop {
        tokio::select! {
            result = &mut work => break result,
            _ = heartbeat.tick(), if !lost => {
                match ctx.pool.get().await {
                    Ok(client) => match jobs::renew_lease(&client, fence, lease).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!("claim lost (lease expired or row deleted); result will be dropped");
                            lost = true;
                        }
                        Err(e) => tracing::warn!(error = %e, "renewing the lease failed"),
                    },
                    Err(e) => tracing::warn!(error = %e, "renewing the lease failed"),
                }
            }
            _ = abandon.cancelled() => {
                crate::metrics::job_finished(JobOutcome::Released, family, started.elapsed().as_secs_f64());
                release(ctx, fence).await;
                return None;
            }
        }
    };
    let measured = Measured {
        family,
        seconds: started.elapsed().as_secs_f64(),
    };
    if lost {
        measured.record(JobOutcome::Fenced);
        return None;
    }
    let outcome = match result {
        Ok(Ok(out)) => Outcome::Done(out),
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
    Some((outcome, measured))
}

/// Writes the outcome, retrying with exponential backoff while the database is unavailable
/// or refuses the write (a failed trigger, a serialization failure, a statement timeout...),
/// for up to a lease: past it another worker may own the row, and the fence makes any late
/// write a no-op. Giving up leaves the job to the lease sweep.
async fn write_back(ctx: &WorkerContext, fence: &Fence<'_>, outcome: Outcome, measured: &Measured) {
    let deadline = tokio::time::Instant::now() + ctx.config.lease();
    let mut attempt = 0;
    loop {
        let result = match ctx.pool.get().await {
            Ok(client) => match &outcome {
                Outcome::Done(out) => {
                    let done = Completion {
                        data: &out.bytes,
                        content_type: out.format.content_type(),
                        width: out.width as i32,
                        height: out.height as i32,
                        thumbnail: &out.thumbnail,
                        thumbnail_content_type: out.thumbnail_format.content_type(),
                        original_content_type: out.input.format.content_type(),
                        original_width: out.input.width as i32,
                        original_height: out.input.height as i32,
                    };
                    jobs::complete_if_still_owner(&client, fence, &done).await
                }
                Outcome::Failed(failure) => jobs::fail_if_still_owner(&client, fence, failure).await,
            },
            Err(e) => Err(DbError::from(e)),
        };
        match result {
            Ok(true) => {
                match &outcome {
                    Outcome::Done(out) => {
                        measured.record(JobOutcome::Completed);
                        tracing::info!(bytes = out.bytes.len(), "completed")
                    }
                    Outcome::Failed(failure) => {
                        measured.record(JobOutcome::Failed);
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
                tokio::time::sleep(wait).await;
            }
            Err(e) => {
                measured.record(JobOutcome::Unwritten);
                tracing::error!(error = %e, "writing the result failed; the lease will expire and the job be retried");
                return;
            }
        }
    }
}

/// Hands the claim back so another replica can take it at once.
async fn release(ctx: &WorkerContext, fence: &Fence<'_>) {
    let result = match ctx.pool.get().await {
        Ok(client) => jobs::release_job(&client, fence).await,
        Err(e) => Err(DbError::from(e)),
    };
    match result {
        Ok(_) => tracing::info!("released unfinished job"),
        Err(e) => tracing::warn!(error = %e, "releasing the job failed; its lease will expire"),
    }
}

/// Deterministic slowness and crashes for the fault tests, which run the real binary. Inert
/// unless `WORKER_TEST_HOOKS=1` is set in the worker's environment; never set in production.
mod test_hooks {
    use std::sync::OnceLock;
    use std::time::Duration;

    /// Bytes that make a hooked worker panic, standing in for a decoder bug.
    const PANIC_MARKER: &[u8] = b"IMAGE-PROCESSOR-TEST-PANIC";

    struct Hooks {
        delay: Duration,
    }

    fn hooks() -> Option<&'static Hooks> {
        static HOOKS: OnceLock<Option<Hooks>> = OnceLock::new();
        HOOKS
            .get_or_init(|| {
                (std::env::var("WORKER_TEST_HOOKS").as_deref() == Ok("1")).then(|| Hooks {
                    delay: Duration::from_millis(
                        std::env::var("WORKER_TEST_DELAY_MS")
                            .ok()
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0),
                    ),
                })
            })
            .as_ref()
    }

    pub(super) fn before_processing(bytes: &[u8]) {
        let Some(hooks) = hooks() else { return };
        if bytes.starts_with(PANIC_MARKER) {
            panic!("test hook: simulated decoder crash");
        }
        std::thread::sleep(hooks.delay);
    }
}
