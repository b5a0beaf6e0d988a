//! Claiming ahead: when jobs are short, a worker claims more rows than it has threads, and the
//! extra ones wait here for a thread.
//!
//! Why: a claim is one statement, one round trip and one run of the counters' statement
//! triggers whatever it takes, so a worker that claims only as many rows as it has free threads
//! claims one or two rows at a time once its jobs take a millisecond (bench/queue_phase.sh:
//! 2 879 claims of 1.7 rows for 5 000 tiny jobs, about 0.37 ms of server time each, plus a
//! round trip during which the freed thread idles). Rows claimed ahead spread that cost and keep
//! the threads fed while the next claim is on the wire.
//!
//! Why only when jobs are short: a row claimed ahead is a row no other replica can run, and it
//! holds its lease while it waits. So the depth follows how long this worker's jobs take: it
//! queues at most [`AHEAD_WINDOW`] of expected work per thread, and nothing for jobs longer than
//! that (a photo's claim costs under 1 % of its processing, and another replica may be idle).
//! The rows' originals count too: the claim statement loads a row beyond the free threads only
//! while the batch's bytes stay within [`AHEAD_BYTES`] (`jobs::claim_jobs`), so a burst of
//! large uploads after small ones cannot pull many large blobs into memory at once.
//!
//! A waiting job is a running job to everything else: it is registered for cancels, its lease
//! is renewed, and a shutdown releases it at once instead of running it during the grace period.
//! One that waits longer than [`MAX_WAIT`] (every thread busy with long jobs, or stuck in one
//! that timed out) is handed back to the queue for another replica, and this worker claims
//! nothing ahead until one of its threads starts a job again.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// The expected work queued per thread: rows are claimed ahead while a thread's queue holds
/// less than this much (at [`MAX_AHEAD_PER_THREAD`] rows at most).
pub(crate) const AHEAD_WINDOW: Duration = Duration::from_millis(25);

/// The most rows waiting per thread.
pub(crate) const MAX_AHEAD_PER_THREAD: usize = 8;

/// The most original bytes one claim loads beyond what its free threads start at once (and
/// that jobs waiting for a thread hold). Small: a claim ahead is for small, short jobs, and the
/// originals it loads stay in memory while they wait. (scripts/bench, peak RSS of one `run`
/// process: 587 MB before claims ahead, 630 MB with 16 MiB here, 605 MB with 4 MiB; one run
/// each on a noisy machine.)
pub(crate) const AHEAD_BYTES: usize = 4 << 20;

/// The longest a claimed job waits for a thread before it is handed back.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(2);

/// The weight of the latest job in the average thread time (1/8).
const EWMA_SHIFT: u32 = 3;

/// The worker's threads, the jobs waiting for them, and how long jobs take.
pub(crate) struct Ahead {
    threads: usize,
    /// One permit per thread; held by the blocking thread itself, so a job that timed out and
    /// runs on keeps it until it returns.
    run: Arc<Semaphore>,
    /// Jobs claimed and not yet on a thread, and their originals' bytes.
    waiting: AtomicUsize,
    waiting_bytes: AtomicUsize,
    /// Average time a job held its thread, in microseconds; 0 before the first job.
    thread_micros: AtomicU64,
    /// A job waited [`MAX_WAIT`] in vain and no job got a thread since: claim nothing ahead.
    stalled: AtomicBool,
    /// The claim loop's wake-up: it holds off while a thread's worth of jobs waits, so it is
    /// woken when the waiting fall below that.
    wake: Arc<Notify>,
}

impl Ahead {
    pub fn new(threads: usize, wake: Arc<Notify>) -> Ahead {
        Ahead {
            threads,
            run: Arc::new(Semaphore::new(threads)),
            waiting: AtomicUsize::new(0),
            waiting_bytes: AtomicUsize::new(0),
            thread_micros: AtomicU64::new(0),
            stalled: AtomicBool::new(false),
            wake,
        }
    }

    /// The slots a worker with `threads` threads needs: one per row it may hold.
    pub fn slots(threads: usize) -> usize {
        threads * (1 + MAX_AHEAD_PER_THREAD)
    }

    /// How many rows to hold beyond the threads now: none until a job was measured or while
    /// the threads are stalled, else [`AHEAD_WINDOW`] of work per thread.
    pub fn depth(&self) -> usize {
        let micros = self.thread_micros.load(Ordering::Relaxed);
        if micros == 0 || self.stalled.load(Ordering::Relaxed) {
            return 0;
        }
        let per_thread = (AHEAD_WINDOW.as_micros() as u64 / micros) as usize;
        self.threads * per_thread.min(MAX_AHEAD_PER_THREAD)
    }

    /// Jobs claimed that wait for a thread.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// A thread is free this moment.
    pub fn thread_free(&self) -> bool {
        self.run.available_permits() > 0
    }

    /// Threads no job holds or waits for: rows a claim starts at once.
    pub fn idle_threads(&self) -> usize {
        self.run.available_permits().saturating_sub(self.waiting())
    }

    /// What a claim may still load for rows that will wait: [`AHEAD_BYTES`] less the originals
    /// already waiting.
    pub fn bytes_left(&self) -> usize {
        AHEAD_BYTES.saturating_sub(self.waiting_bytes.load(Ordering::Relaxed))
    }

    /// Counts a claimed job as waiting until it gets its thread (or is dropped).
    pub fn queue(self: &Arc<Self>, bytes: usize) -> Queued {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        self.waiting_bytes.fetch_add(bytes, Ordering::Relaxed);
        crate::metrics::jobs_waiting(1);
        Queued {
            ahead: self.clone(),
            bytes,
        }
    }

    /// A job waited [`MAX_WAIT`] for a thread and is handed back: claim nothing ahead until a
    /// thread starts a job again.
    pub fn stalled(&self) {
        self.stalled.store(true, Ordering::Relaxed);
    }

    fn measured(&self, took: Duration) {
        let sample = (took.as_micros() as u64).max(1);
        let _ = self
            .thread_micros
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |avg| {
                Some(if avg == 0 {
                    sample
                } else {
                    avg - (avg >> EWMA_SHIFT) + (sample >> EWMA_SHIFT)
                })
            });
    }
}

/// A claimed job waiting for a thread.
pub(crate) struct Queued {
    ahead: Arc<Ahead>,
    bytes: usize,
}

impl Queued {
    /// Waits for a thread (in claim order: the semaphore is fair). `None` never happens while
    /// the worker runs (its semaphore is never closed).
    pub async fn thread(self) -> Option<Thread> {
        let permit = self.ahead.run.clone().acquire_owned().await.ok()?;
        self.ahead.stalled.store(false, Ordering::Relaxed);
        crate::metrics::threads_busy(1);
        Some(Thread {
            _permit: permit,
            ahead: self.ahead.clone(),
            started: Instant::now(),
        })
        // `self` drops here: no longer waiting.
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        let was = self.ahead.waiting.fetch_sub(1, Ordering::Relaxed);
        self.ahead.waiting_bytes.fetch_sub(self.bytes, Ordering::Relaxed);
        crate::metrics::jobs_waiting(-1);
        if was == self.ahead.threads {
            self.ahead.wake.notify_one();
        }
    }
}

/// A thread a job holds; moved onto the blocking thread, so it is given back when that thread
/// returns, and the time it was held feeds the depth.
pub(crate) struct Thread {
    _permit: OwnedSemaphorePermit,
    ahead: Arc<Ahead>,
    started: Instant,
}

impl Drop for Thread {
    fn drop(&mut self) {
        self.ahead.measured(self.started.elapsed());
        crate::metrics::threads_busy(-1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_follows_how_long_jobs_take() {
        let ahead = Ahead::new(4, Arc::default());
        assert_eq!(
            ahead.depth(),
            0,
            "nothing is claimed ahead before a job was measured"
        );
        ahead.measured(Duration::from_millis(1));
        assert_eq!(ahead.depth(), 4 * MAX_AHEAD_PER_THREAD);
        let slow = Ahead::new(4, Arc::default());
        slow.measured(Duration::from_millis(10));
        assert_eq!(slow.depth(), 4 * 2, "25 ms of work per thread is two 10 ms jobs");
        let photos = Ahead::new(4, Arc::default());
        photos.measured(Duration::from_millis(120));
        assert_eq!(
            photos.depth(),
            0,
            "jobs longer than the window are never claimed ahead"
        );
        // The average moves toward what jobs take now: a run of long jobs stops claiming ahead.
        for _ in 0..40 {
            ahead.measured(Duration::from_millis(200));
        }
        assert_eq!(ahead.depth(), 0);
        // A job that waited in vain stops claims ahead until a thread starts a job again.
        let quick = Arc::new(Ahead::new(2, Arc::default()));
        quick.measured(Duration::from_millis(1));
        quick.stalled();
        assert_eq!(quick.depth(), 0);
        let thread = futures::executor::block_on(quick.queue(10).thread());
        assert_eq!(quick.depth(), 2 * MAX_AHEAD_PER_THREAD);
        drop(thread);
    }

    #[tokio::test]
    async fn waiting_jobs_and_bytes_are_counted_until_they_get_a_thread() {
        use futures::FutureExt;
        let wake = Arc::new(Notify::new());
        let woken = || wake.notified().now_or_never().is_some();
        let ahead = Arc::new(Ahead::new(1, wake.clone()));
        let first = ahead.queue(1000).thread().await.expect("a free thread");
        assert!(
            woken(),
            "the waiting fell below one thread's worth: the claim loop is woken"
        );
        let second = ahead.queue(3000);
        let dropped = ahead.queue(5000);
        assert_eq!(ahead.waiting(), 2);
        assert_eq!(ahead.bytes_left(), AHEAD_BYTES - 8000);
        assert_eq!(ahead.idle_threads(), 0);
        drop(dropped);
        assert_eq!(ahead.waiting(), 1);
        assert!(!woken(), "one still waits, a thread's worth: no wake-up yet");
        let waiter = tokio::spawn(second.thread());
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "the only thread is taken");
        drop(first);
        let second = waiter.await.expect("task").expect("the thread given back");
        assert_eq!((ahead.waiting(), ahead.bytes_left()), (0, AHEAD_BYTES));
        assert!(woken());
        drop(second);
        assert_eq!(ahead.idle_threads(), 1);
    }
}
