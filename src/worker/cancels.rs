//! The jobs this worker is running, by image id, so that a cancel notification (`image_cancel`,
//! sent by `POST /api/images/{id}/cancel`) reaches the one running that image.
//!
//! The notification is only a hint: the job checks its claim against the row before it stops
//! (`job.rs`), and a notification lost on a reconnect costs only time (the next heartbeat finds
//! the claim gone).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use uuid::Uuid;

/// Image id → the (registration number, token) of each job of it running here.
type Running = HashMap<Uuid, Vec<(u64, Arc<Notify>)>>;

/// Running jobs' cancel tokens.
#[derive(Default)]
pub(crate) struct Cancels {
    /// Image id → (registration number, token) of every job of that image running here: the
    /// image's own and its variants', or the same image claimed again while an old thread
    /// lingers. The number lets a registration remove only its own entry.
    running: Mutex<Running>,
    next: AtomicU64,
}

impl Cancels {
    /// Registers a job for its lifetime (until the returned guard drops).
    pub fn register(self: &Arc<Self>, id: Uuid) -> Registration {
        let serial = self.next.fetch_add(1, Ordering::Relaxed);
        let token = Arc::new(Notify::new());
        self.lock().entry(id).or_default().push((serial, token.clone()));
        Registration {
            cancels: self.clone(),
            id,
            serial,
            token,
        }
    }

    /// Handles an `image_cancel` payload: wakes the jobs running that image or its variants, if
    /// this worker runs them (each notification once: the job checks its claim every time, so a stray notification
    /// before the real cancel does not use it up). Anything else (another worker's job, a
    /// malformed payload) is ignored.
    pub fn notified(&self, payload: &str) {
        let Ok(id) = payload.parse::<Uuid>() else {
            tracing::debug!(payload, "ignoring a malformed cancel notification");
            return;
        };
        for (_, token) in self.lock().get(&id).into_iter().flatten() {
            token.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Running> {
        // A panic while holding this lock leaves the map consistent (each operation is one
        // insert, get or remove), so a poisoned lock is used as is.
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running job's entry; removed when dropped.
pub(crate) struct Registration {
    cancels: Arc<Cancels>,
    id: Uuid,
    serial: u64,
    token: Arc<Notify>,
}

impl Registration {
    /// Wakes once per cancel notified for this job's image.
    pub fn token(&self) -> &Notify {
        &self.token
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut running = self.cancels.lock();
        if let Some(jobs) = running.get_mut(&self.id) {
            jobs.retain(|(serial, _)| *serial != self.serial);
            if jobs.is_empty() {
                running.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a notification is waiting for the job (consumes it).
    fn woken(job: &Registration) -> bool {
        use futures::FutureExt;
        job.token().notified().now_or_never().is_some()
    }

    #[test]
    fn a_notification_reaches_only_the_job_running_that_image() {
        let cancels = Arc::new(Cancels::default());
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let job_a = cancels.register(a);
        let job_b = cancels.register(b);
        cancels.notified(&a.to_string());
        cancels.notified("not-a-uuid");
        cancels.notified(&Uuid::new_v4().to_string());
        assert!(woken(&job_a));
        assert!(!woken(&job_b));
    }

    #[test]
    fn an_old_registration_does_not_remove_a_newer_one_for_the_same_image() {
        let cancels = Arc::new(Cancels::default());
        let id = Uuid::new_v4();
        let old = cancels.register(id);
        let new = cancels.register(id);
        drop(old);
        cancels.notified(&id.to_string());
        assert!(woken(&new));
        drop(new);
        assert!(cancels.lock().is_empty());
    }

    #[test]
    fn a_cancel_reaches_every_job_of_the_image_here() {
        let cancels = Arc::new(Cancels::default());
        let id = Uuid::new_v4();
        let image = cancels.register(id);
        let variant = cancels.register(id);
        cancels.notified(&id.to_string());
        assert!(woken(&image));
        assert!(woken(&variant));
    }
}
