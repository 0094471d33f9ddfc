//! The one backoff function: how long a run waits before its next attempt. Used by the worker
//! (an attempt that failed or a runner fault) and by the rescuer (an attempt whose runner was
//! lost), so a retry is timed the same whoever decides it.

use rand::Rng;

/// Exponential backoff with jitter: `base * 2^(attempt-1)`, plus up to 25% random extra, capped
/// at `cap_ms`. `attempt` is the number of the attempt that just ended (1-based).
pub fn backoff_delay(base_ms: u64, attempt: u32, cap_ms: u64) -> u64 {
    let exp = base_ms.saturating_mul(1u64 << attempt.saturating_sub(1).min(40));
    let jitter = if exp >= 4 {
        rand::rng().random_range(0..=exp / 4)
    } else {
        0
    };
    exp.saturating_add(jitter).min(cap_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_with_bounded_jitter_and_cap() {
        for attempt in 1..=5u32 {
            let exp = 100u64 << (attempt - 1);
            for _ in 0..50 {
                let d = backoff_delay(100, attempt, u64::MAX);
                assert!(d >= exp && d <= exp + exp / 4, "attempt {attempt}: {d}");
            }
        }
        assert_eq!(backoff_delay(1000, 30, 5000), 5000);
        assert_eq!(backoff_delay(0, 3, 5000), 0);
        // Huge attempt numbers saturate instead of overflowing.
        assert_eq!(backoff_delay(u64::MAX, 99, 7), 7);
    }
}
