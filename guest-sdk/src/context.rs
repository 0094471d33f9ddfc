//! What the runner tells a job about the attempt it is executing.

use std::time::{Duration, SystemTime};

use crate::__private::WitContext;

/// The attempt a job is executing: who owns it, which run, which attempt.
///
/// Passed to a `#[job]` function that declares a `Context` parameter. `Default` gives a
/// first-and-last attempt with empty names, for unit tests:
/// `Context { attempt: 2, max_attempts: 3, ..Context::default() }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// Name of the tenant (application) that owns the job.
    pub tenant: String,
    /// Name of the job as uploaded.
    pub job: String,
    /// The job version (1, 2, ...) this run executes.
    pub version: u32,
    /// Id of the run (a UUID in text form). The same on every attempt: use it as an
    /// idempotency key towards other systems.
    pub run_id: String,
    /// 1 for the first attempt, 2 for the first retry, ...
    pub attempt: u32,
    /// The most attempts this run may take.
    pub max_attempts: u32,
    /// When the run was due, in milliseconds since the Unix epoch (UTC).
    pub scheduled_at_ms: i64,
}

impl Context {
    /// When the run was due, as a [`SystemTime`].
    pub fn scheduled_at(&self) -> SystemTime {
        let offset = Duration::from_millis(self.scheduled_at_ms.unsigned_abs());
        if self.scheduled_at_ms >= 0 {
            SystemTime::UNIX_EPOCH + offset
        } else {
            SystemTime::UNIX_EPOCH - offset
        }
    }

    /// True on the run's last chance: a retryable error now fails the run.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}

impl Default for Context {
    fn default() -> Self {
        Self {
            tenant: String::new(),
            job: String::new(),
            version: 1,
            run_id: String::new(),
            attempt: 1,
            max_attempts: 1,
            scheduled_at_ms: 0,
        }
    }
}

impl From<WitContext> for Context {
    fn from(c: WitContext) -> Self {
        Self {
            tenant: c.tenant,
            job: c.job,
            version: c.version,
            run_id: c.run_id,
            attempt: c.attempt,
            max_attempts: c.max_attempts,
            scheduled_at_ms: c.scheduled_at_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_at_handles_both_sides_of_the_epoch() {
        let ctx = |ms| Context {
            scheduled_at_ms: ms,
            ..Context::default()
        };
        assert_eq!(
            ctx(1_500).scheduled_at(),
            SystemTime::UNIX_EPOCH + Duration::from_millis(1_500)
        );
        assert_eq!(
            ctx(-1_500).scheduled_at(),
            SystemTime::UNIX_EPOCH - Duration::from_millis(1_500)
        );
    }

    #[test]
    fn last_attempt() {
        let ctx = Context {
            attempt: 2,
            max_attempts: 3,
            ..Context::default()
        };
        assert!(!ctx.is_last_attempt());
        assert!(Context { attempt: 3, ..ctx }.is_last_attempt());
    }
}
