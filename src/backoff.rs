//! Exponential backoff with full jitter, for reconnects and retried writes.

use std::time::Duration;

use rand::Rng;

/// The delay before retry number `attempt` (0-based): uniformly random in
/// `[base·2^attempt / 2, base·2^attempt]`, capped at `max`. The jitter keeps replicas that lost
/// the database at the same moment from reconnecting in lockstep.
pub fn delay(attempt: u32, base: Duration, max: Duration) -> Duration {
    let ceiling = base.saturating_mul(2u32.saturating_pow(attempt.min(20))).min(max);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::thread_rng().gen_range(nanos / 2..=nanos.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_and_stays_under_the_cap() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(5);
        for attempt in 0..40 {
            let d = delay(attempt, base, max);
            assert!(d <= max, "attempt {attempt}: {d:?} over the cap");
            let ceiling = base.saturating_mul(2u32.saturating_pow(attempt.min(20))).min(max);
            assert!(
                d >= ceiling / 2,
                "attempt {attempt}: {d:?} under half of {ceiling:?}"
            );
        }
    }
}
