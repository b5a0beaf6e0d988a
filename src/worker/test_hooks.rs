//! Deterministic slowness and crashes for the fault tests, which run the real binary. Inert
//! unless `WORKER_TEST_HOOKS=1` is set in the worker's environment; never set in production.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// Bytes that make a hooked worker panic, standing in for a decoder bug.
const PANIC_MARKER: &[u8] = b"IMAGE-PROCESSOR-TEST-PANIC";
/// Bytes that make a hooked worker's thread hang for an hour: a job that never ends.
const HANG_MARKER: &[u8] = b"IMAGE-PROCESSOR-TEST-HANG";
/// Bytes that make a hooked worker abort its whole process: a job that kills its worker.
const ABORT_MARKER: &[u8] = b"IMAGE-PROCESSOR-TEST-ABORT";

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

pub(super) fn before_processing(bytes: &[u8], stop: &AtomicBool) {
    let Some(hooks) = hooks() else { return };
    if bytes.starts_with(PANIC_MARKER) {
        panic!("test hook: simulated decoder crash");
    }
    if bytes.starts_with(HANG_MARKER) {
        std::thread::sleep(Duration::from_secs(3600));
    }
    if bytes.starts_with(ABORT_MARKER) {
        std::process::abort();
    }
    // Slept in small steps that look at the stop flag, as the pipeline's safe points do,
    // so a test can cancel a job that is visibly running.
    let until = std::time::Instant::now() + hooks.delay;
    while std::time::Instant::now() < until && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(10).min(hooks.delay));
    }
}
