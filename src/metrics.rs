//! Prometheus metrics: one process-wide recorder (the `metrics` facade with the Prometheus
//! exporter's recorder, no listener of its own) rendered by `GET /metrics`.
//!
//! Every recording function is cheap and never fails; before [`install`] they are no-ops, so
//! library code and tests can call them freely. Names and labels are listed in
//! `docs/observability.md`.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::imaging::{Pipeline, Step};
use crate::states::{JobOutcome, JobStatus};

const HTTP_REQUESTS: &str = "image_processor_http_requests_total";
const HTTP_DURATION: &str = "image_processor_http_request_duration_seconds";
const UPLOAD_BYTES: &str = "image_processor_upload_bytes_total";
const UPLOAD_FILES: &str = "image_processor_upload_files_total";
const VARIANTS: &str = "image_processor_variants_total";
const VARIANT_SECONDS: &str = "image_processor_variant_processing_seconds";
const VARIANT_REQUESTS: &str = "image_processor_variant_requests_total";
const JOBS: &str = "image_processor_jobs_total";
const JOB_SECONDS: &str = "image_processor_job_processing_seconds";
const PICKUP_SECONDS: &str = "image_processor_job_pickup_latency_seconds";
const THREADS_BUSY: &str = "image_processor_worker_threads_busy";
const JOBS_WAITING: &str = "image_processor_worker_jobs_waiting";
const WRITE_BATCH: &str = "image_processor_write_back_batch_size";
const THREADS_STUCK: &str = "image_processor_worker_threads_stuck";
const QUEUE_DEPTH: &str = "image_processor_queue_depth";
const ROWS_ESTIMATE: &str = "image_processor_images_estimated_rows";
const OLDEST_PENDING: &str = "image_processor_queue_oldest_pending_seconds";
const EXPIRED: &str = "image_processor_images_expired_total";
const CANCELLED: &str = "image_processor_images_cancelled_total";
const WEBHOOK_DELIVERIES: &str = "image_processor_webhook_deliveries_total";
const WEBHOOK_LATENCY: &str = "image_processor_webhook_delivery_latency_seconds";
const WEBHOOK_ATTEMPT_SECONDS: &str = "image_processor_webhook_attempt_duration_seconds";
/// Every `outcome` of a webhook attempt (`db::webhooks::AttemptOutcome`).
const WEBHOOK_OUTCOMES: [&str; 4] = ["delivered", "retried", "failed", "refused"];

/// Request latencies: most answers are milliseconds; long-polls and SSE run to a minute.
const HTTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Image work: a thumbnail is milliseconds, a 50 MP AVIF encode can take tens of seconds.
const JOB_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
/// Pickup: a NOTIFY wake-up is milliseconds; a missed one waits for the sweep (seconds);
/// backlog can take minutes.
const PICKUP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
];

/// Webhook latency, from the image finishing to the receiver's 2xx: milliseconds when it
/// answers at once, minutes to an hour through retries.
const WEBHOOK_LATENCY_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];
/// One attempt: bounded by `WEBHOOK_TIMEOUT_SECS` (at most 60 s).
/// Results per write-back batch: 1 on an idle worker, up to `worker::writer`'s 64.
const WRITE_BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0];

const WEBHOOK_ATTEMPT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// How often histograms are folded so memory stays bounded even if nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder. Idempotent: later calls (other tests in the same
/// process, several roles) return `Ok` without doing anything.
pub fn install() -> anyhow::Result<()> {
    if HANDLE.get().is_some() {
        return Ok(());
    }
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), HTTP_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(JOB_SECONDS.into()), JOB_BUCKETS))
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(VARIANT_SECONDS.into()), JOB_BUCKETS))
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(PICKUP_SECONDS.into()), PICKUP_BUCKETS))
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(WRITE_BATCH.into()), WRITE_BATCH_BUCKETS))
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full(WEBHOOK_LATENCY.into()), WEBHOOK_LATENCY_BUCKETS)
        })
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(WEBHOOK_ATTEMPT_SECONDS.into()),
                WEBHOOK_ATTEMPT_BUCKETS,
            )
        })
        .context("configuring the Prometheus histogram buckets")?;
    let mut installed_here = false;
    HANDLE.get_or_init(|| {
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        installed_here = metrics::set_global_recorder(recorder).is_ok();
        handle
    });
    if !installed_here {
        // Either another thread won the race (fine), or some other recorder was installed
        // first, in which case our handle renders nothing useful: say so once.
        if !recorder_is_ours() {
            anyhow::bail!("another metrics recorder is already installed in this process");
        }
        return Ok(());
    }
    describe();
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(|| loop {
            std::thread::sleep(UPKEEP_EVERY);
            if let Some(handle) = HANDLE.get() {
                handle.run_upkeep();
            }
        })
        .context("starting the metrics upkeep thread")?;
    Ok(())
}

/// True when the recorder behind `HANDLE` is the global one (checked by recording a probe).
fn recorder_is_ours() -> bool {
    let Some(handle) = HANDLE.get() else {
        return false;
    };
    metrics::gauge!(THREADS_BUSY).increment(0.0);
    handle.render().contains(THREADS_BUSY)
}

/// HELP lines for every family, and zeroed series so a fresh process already shows them.
fn describe() {
    metrics::describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, matched route and status code"
    );
    metrics::describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "time to the response head, by method and matched route"
    );
    metrics::describe_counter!(
        UPLOAD_BYTES,
        metrics::Unit::Bytes,
        "image bytes accepted by uploads"
    );
    metrics::describe_counter!(UPLOAD_FILES, "image files accepted by uploads");
    metrics::describe_counter!(
        JOBS,
        "jobs finished by this worker, by outcome (completed, failed, timed_out, retried, released, fenced, unwritten) and operation family"
    );
    metrics::describe_histogram!(
        JOB_SECONDS,
        metrics::Unit::Seconds,
        "time from claim to outcome, by outcome and operation family"
    );
    metrics::describe_histogram!(
        PICKUP_SECONDS,
        metrics::Unit::Seconds,
        "time from a row becoming runnable (upload or end of backoff) to its claim"
    );
    metrics::describe_gauge!(THREADS_BUSY, "worker threads processing an image now");
    metrics::describe_gauge!(
        JOBS_WAITING,
        "jobs this worker claimed ahead of a free thread (short jobs only) and that wait for one"
    );
    metrics::describe_histogram!(
        WRITE_BATCH,
        "results written back per batch (one commit): 1 when idle, more under load"
    );
    metrics::describe_gauge!(
        THREADS_STUCK,
        "worker threads still running a job that already failed for passing JOB_TIMEOUT_SECS"
    );
    metrics::describe_gauge!(
        QUEUE_DEPTH,
        "rows waiting (pending) or claimed (processing), refreshed at most every few seconds"
    );
    metrics::describe_counter!(
        EXPIRED,
        "finished images this process deleted for being older than RETENTION_DAYS"
    );
    metrics::counter!(EXPIRED).absolute(0);
    metrics::describe_counter!(
        CANCELLED,
        "images cancelled through this process's API (pending or processing when cancelled)"
    );
    metrics::counter!(CANCELLED).absolute(0);
    metrics::describe_gauge!(
        OLDEST_PENDING,
        metrics::Unit::Seconds,
        "how long the longest-waiting runnable pending row has waited (0: none); scheduled rows count from their not_before"
    );
    metrics::describe_gauge!(
        ROWS_ESTIMATE,
        "all rows of processed_images, from the planner's estimate (pg_class.reltuples)"
    );
    metrics::gauge!(THREADS_BUSY).set(0.0);
    metrics::gauge!(JOBS_WAITING).set(0.0);
    metrics::gauge!(THREADS_STUCK).set(0.0);
    metrics::gauge!(OLDEST_PENDING).set(0.0);
    for outcome in JobOutcome::ALL {
        for family in FAMILIES {
            metrics::counter!(JOBS, "outcome" => outcome.label(), "family" => family).absolute(0);
        }
    }
    metrics::counter!(UPLOAD_BYTES).absolute(0);
    metrics::counter!(UPLOAD_FILES).absolute(0);
    describe_webhooks();
    describe_variants();
}

fn describe_variants() {
    metrics::describe_counter!(
        VARIANTS,
        "variant jobs finished by this worker, by preset and outcome (also counted in image_processor_jobs_total)"
    );
    metrics::describe_histogram!(
        VARIANT_SECONDS,
        metrics::Unit::Seconds,
        "time from claim to outcome of a variant job, by preset and outcome"
    );
    metrics::describe_counter!(
        VARIANT_REQUESTS,
        "variant requests answered by this process, by preset, route (api or signed) and result: served, not_modified, queued (made on request), pending, failed, refused (bad signature)"
    );
}

/// A variant job of `preset` ended with `outcome` after `seconds`. Preset names are the
/// operator's (`[a-z0-9_-]{1,64}`, and only existing presets reach a worker), so the label's
/// cardinality is the number of presets.
pub fn variant_finished(preset: &str, outcome: JobOutcome, seconds: f64) {
    let labels = [
        ("preset", preset.to_owned()),
        ("outcome", outcome.label().to_owned()),
    ];
    metrics::counter!(VARIANTS, &labels).increment(1);
    metrics::histogram!(VARIANT_SECONDS, &labels).record(seconds);
}

/// A variant request was answered with `result` (`served`, `not_modified`, `queued`, `pending`,
/// `failed`, `refused`) on `route` (`api` or `signed`).
pub fn variant_request(preset: &str, route: &'static str, result: &'static str) {
    metrics::counter!(VARIANT_REQUESTS, "preset" => preset.to_owned(), "route" => route, "result" => result)
        .increment(1);
}

fn describe_webhooks() {
    metrics::describe_counter!(
        WEBHOOK_DELIVERIES,
        "webhook attempts by this process, by outcome: delivered (2xx), retried (will be tried again), failed (the last attempt failed), refused (a destination that may not be reached)"
    );
    metrics::describe_histogram!(
        WEBHOOK_LATENCY,
        metrics::Unit::Seconds,
        "time from the image finishing (the event being written) to the receiver's 2xx, retries included"
    );
    metrics::describe_histogram!(
        WEBHOOK_ATTEMPT_SECONDS,
        metrics::Unit::Seconds,
        "time one webhook attempt took, whatever its outcome"
    );
    for outcome in WEBHOOK_OUTCOMES {
        metrics::counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).absolute(0);
    }
}

/// The text exposition of every metric (empty before [`install`]).
pub fn render() -> String {
    HANDLE.get().map(PrometheusHandle::render).unwrap_or_default()
}

/// A job ended with `outcome`; `family` comes from [`family`]; `seconds` from claim to outcome.
pub fn job_finished(outcome: JobOutcome, family: &'static str, seconds: f64) {
    let labels = [("outcome", outcome.label()), ("family", family)];
    metrics::counter!(JOBS, &labels).increment(1);
    metrics::histogram!(JOB_SECONDS, &labels).record(seconds);
}

/// The lease sweep took back `rows` claims whose worker vanished: each is re-queued with
/// backoff, or failed once past `MAX_ATTEMPTS`. Counted as `outcome="retried"` with
/// `family="unknown"` (the sweep does not read pipelines); no processing time is recorded.
pub fn jobs_reaped(rows: u64) {
    metrics::counter!(JOBS, "outcome" => JobOutcome::Retried.label(), "family" => "unknown").increment(rows);
}

/// A job was claimed `seconds` after it became runnable.
pub fn pickup_latency(seconds: f64) {
    metrics::histogram!(PICKUP_SECONDS).record(seconds.max(0.0));
}

/// A batch of `n` results was written back (one statement per kind, one commit).
pub fn write_batch(n: usize) {
    metrics::histogram!(WRITE_BATCH).record(n as f64);
}

/// `delta` more (or fewer) claimed jobs wait for a worker thread (`worker::ahead`).
pub fn jobs_waiting(delta: i64) {
    metrics::gauge!(JOBS_WAITING).increment(delta as f64);
}

/// `delta` more (or fewer) worker threads are busy.
pub fn threads_busy(delta: i64) {
    metrics::gauge!(THREADS_BUSY).increment(delta as f64);
}

/// `delta` more (or fewer) threads are still running a job that already timed out.
pub fn threads_stuck(delta: i64) {
    metrics::gauge!(THREADS_STUCK).increment(delta as f64);
}

/// One HTTP answer. `route` is the matched route template (`/api/images/{id}`), never the raw
/// path, so the series stay few.
pub fn http_request(method: &str, route: &str, status: u16, seconds: f64) {
    let method = match method {
        "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => method,
        _ => "OTHER",
    };
    metrics::counter!(
        HTTP_REQUESTS,
        "method" => method.to_owned(),
        "route" => route.to_owned(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(HTTP_DURATION, "method" => method.to_owned(), "route" => route.to_owned())
        .record(seconds);
}

/// An upload stored `files` files of `bytes` bytes in total.
pub fn upload_accepted(files: usize, bytes: usize) {
    metrics::counter!(UPLOAD_FILES).increment(files as u64);
    metrics::counter!(UPLOAD_BYTES).increment(bytes as u64);
}

/// The queue as last read from the database.
pub fn queue_depth(status: JobStatus, rows: i64) {
    metrics::gauge!(QUEUE_DEPTH, "status" => status.as_str()).set(rows as f64);
}

/// One webhook attempt ended with `outcome` after `seconds`.
pub fn webhook_attempt(outcome: &'static str, seconds: f64) {
    metrics::counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).increment(1);
    metrics::histogram!(WEBHOOK_ATTEMPT_SECONDS).record(seconds.max(0.0));
}

/// A webhook was delivered `seconds` after its event was written.
pub fn webhook_delivered(seconds: f64) {
    metrics::histogram!(WEBHOOK_LATENCY).record(seconds.max(0.0));
}

/// Finished images deleted by the retention pass.
/// An image cancelled through the API (whether or not a worker was running it).
pub fn cancelled() {
    metrics::counter!(CANCELLED).increment(1);
}

pub fn expired(rows: u64) {
    metrics::counter!(EXPIRED).increment(rows);
}

/// How long the longest-waiting runnable row has waited, as last read from the database.
pub fn oldest_pending(seconds: f64) {
    metrics::gauge!(OLDEST_PENDING).set(seconds.max(0.0));
}

/// The planner's row estimate for the whole table.
pub fn estimated_rows(rows: f64) {
    metrics::gauge!(ROWS_ESTIMATE).set(rows.max(0.0));
}

/// Every `family` label: those [`family`] returns, and `unknown` (a stored pipeline that does
/// not parse, jobs taken back by the lease sweep).
pub const FAMILIES: [&str; 6] = ["resize", "filter", "adjust", "geometry", "convert", "unknown"];

/// The operation family a pipeline is counted under: its most expensive kind of step.
/// `resize` > `filter` (blur, sharpen, kernel, pixelate, watermark) > `adjust` (grayscale, brightness,
/// contrast, saturation, hue, gamma, sepia, invert, tint, equalize) > `geometry` (crop, rotate,
/// flip) > `convert` (re-encode only). A fixed, small set of labels.
pub fn family(pipeline: &Pipeline) -> &'static str {
    let rank = |step: &Step| match step {
        Step::Resize { .. } => 4,
        Step::Blur { .. }
        | Step::Sharpen { .. }
        | Step::Kernel { .. }
        | Step::Pixelate { .. }
        | Step::Watermark { .. } => 3,
        Step::Grayscale
        | Step::Brightness { .. }
        | Step::Contrast { .. }
        | Step::Saturation { .. }
        | Step::Hue { .. }
        | Step::Gamma { .. }
        | Step::Sepia { .. }
        | Step::Invert
        | Step::Tint { .. }
        | Step::Equalize => 2,
        Step::Crop { .. } | Step::Rotate { .. } | Step::Flip { .. } => 1,
    };
    match pipeline.steps.iter().map(rank).max().unwrap_or(0) {
        4 => "resize",
        3 => "filter",
        2 => "adjust",
        1 => "geometry",
        _ => "convert",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_pipeline_counts_as_resize() {
        assert_eq!(family(&Pipeline::default()), "resize");
        let convert = Pipeline {
            steps: vec![],
            ..Pipeline::default()
        };
        assert_eq!(family(&convert), "convert");
    }

    #[test]
    fn install_is_idempotent_and_renders_what_was_recorded() {
        install().expect("first install");
        install().expect("second install");
        job_finished(JobOutcome::Completed, "resize", 0.2);
        pickup_latency(0.01);
        threads_busy(1);
        threads_busy(-1);
        write_batch(3);
        jobs_reaped(2);
        let text = render();
        assert!(
            text.contains("image_processor_jobs_total{outcome=\"completed\",family=\"resize\"}"),
            "{text}"
        );
        assert!(
            text.contains("image_processor_job_pickup_latency_seconds_bucket"),
            "{text}"
        );
        assert!(text.contains("image_processor_worker_threads_busy 0"), "{text}");
        assert!(
            text.contains("image_processor_write_back_batch_size_bucket{le=\"3\"} 1"),
            "{text}"
        );
        assert!(text.contains("image_processor_worker_threads_stuck 0"), "{text}");
        assert!(
            text.contains("image_processor_jobs_total{outcome=\"retried\",family=\"unknown\"} 2"),
            "{text}"
        );
    }

    #[test]
    fn family_only_returns_listed_labels() {
        assert!(FAMILIES.contains(&family(&Pipeline::default())));
        let convert = Pipeline {
            steps: vec![],
            ..Pipeline::default()
        };
        assert!(FAMILIES.contains(&family(&convert)));
    }
}
