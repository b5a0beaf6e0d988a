//! Which of the worker's threads are stuck: still running a job that was already ended
//! `failed` for running past `JOB_TIMEOUT_SECS`.
//!
//! A blocking thread cannot be stopped from outside, so a job past its deadline is failed in
//! the database at once while its thread goes on; the thread's slot stays taken until the work
//! returns, so the worker never runs more than `WORKER_THREADS` at a time. When every slot is
//! held by such a thread the process can do nothing more, and `/healthz` says so (`503`) for
//! the orchestrator to restart it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Shared by the worker (which marks threads stuck) and `/healthz` (which reads it).
#[derive(Debug)]
pub struct ThreadHealth {
    threads: usize,
    stuck: AtomicUsize,
}

impl ThreadHealth {
    pub fn new(threads: usize) -> Arc<ThreadHealth> {
        Arc::new(ThreadHealth {
            threads,
            stuck: AtomicUsize::new(0),
        })
    }

    /// Threads still busy with a job that timed out.
    pub fn stuck(&self) -> usize {
        self.stuck.load(Ordering::Relaxed)
    }

    /// The worker's thread count.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// True when no thread is left for new jobs because every one is stuck.
    pub fn all_stuck(&self) -> bool {
        self.threads > 0 && self.stuck() >= self.threads
    }

    /// Counts one thread as stuck until the guard is dropped (its work returned).
    pub(super) fn mark_stuck(self: &Arc<Self>) -> StuckThread {
        self.stuck.fetch_add(1, Ordering::Relaxed);
        crate::metrics::threads_stuck(1);
        StuckThread(self.clone())
    }
}

/// One stuck thread; dropping it counts the thread free again.
pub(super) struct StuckThread(Arc<ThreadHealth>);

impl Drop for StuckThread {
    fn drop(&mut self) {
        self.0.stuck.fetch_sub(1, Ordering::Relaxed);
        crate::metrics::threads_stuck(-1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_stuck_only_when_every_thread_is() {
        let health = ThreadHealth::new(2);
        assert!(!health.all_stuck());
        let one = health.mark_stuck();
        assert_eq!(health.stuck(), 1);
        assert!(!health.all_stuck());
        let two = health.mark_stuck();
        assert!(health.all_stuck());
        drop(one);
        assert!(!health.all_stuck());
        drop(two);
        assert_eq!(health.stuck(), 0);
    }
}
