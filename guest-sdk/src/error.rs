//! How a job says why it produced no output, and what the runner should do about it.

use std::fmt;
use std::time::Duration;

use crate::__private::WitJobError;
use crate::__private::bindings::sandfire::job::types::{RetryRequest, SnoozeRequest};

/// Why an attempt produced no output: retry it, fail the run, or snooze it.
///
/// `String` and `&str` convert into a retryable error. A foreign error type must be classified
/// explicitly, with `.map_err(JobError::retry)` / `.map_err(JobError::fail)` or the
/// [`ResultExt`] methods, because only the job knows whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError(Kind);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Retry {
        message: String,
        delay: Option<Duration>,
    },
    Fail(String),
    Snooze {
        delay: Duration,
        reason: String,
    },
}

impl JobError {
    /// A transient failure: the run is retried with its backoff policy while attempts remain.
    pub fn retry(message: impl fmt::Display) -> Self {
        Self(Kind::Retry {
            message: message.to_string(),
            delay: None,
        })
    }

    /// A transient failure that should not be retried before `delay` has passed (for example a
    /// `Retry-After` the job received). The runner caps the delay.
    pub fn retry_after(message: impl fmt::Display, delay: Duration) -> Self {
        Self(Kind::Retry {
            message: message.to_string(),
            delay: Some(delay),
        })
    }

    /// A permanent failure: the run fails now, without further attempts.
    pub fn fail(message: impl fmt::Display) -> Self {
        Self(Kind::Fail(message.to_string()))
    }

    /// Not a failure: run again after `delay` without using up an attempt (the runner bounds
    /// how long and how often a run may snooze).
    pub fn snooze(delay: Duration, reason: impl fmt::Display) -> Self {
        Self(Kind::Snooze {
            delay,
            reason: reason.to_string(),
        })
    }

    /// The message (for a snooze, the reason).
    pub fn message(&self) -> &str {
        match &self.0 {
            Kind::Retry { message, .. } | Kind::Fail(message) => message,
            Kind::Snooze { reason, .. } => reason,
        }
    }

    /// True for [`JobError::retry`] and [`JobError::retry_after`].
    pub fn is_retryable(&self) -> bool {
        matches!(self.0, Kind::Retry { .. })
    }

    /// True for [`JobError::snooze`].
    pub fn is_snooze(&self) -> bool {
        matches!(self.0, Kind::Snooze { .. })
    }

    /// The requested wait: the snooze delay or the `retry_after` delay.
    pub fn delay(&self) -> Option<Duration> {
        match &self.0 {
            Kind::Retry { delay, .. } => *delay,
            Kind::Fail(_) => None,
            Kind::Snooze { delay, .. } => Some(*delay),
        }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Retry { message, .. } | Kind::Fail(message) => f.write_str(message),
            Kind::Snooze { delay, reason } => write!(f, "snoozed for {delay:?}: {reason}"),
        }
    }
}

impl std::error::Error for JobError {}

impl From<String> for JobError {
    /// A retryable error.
    fn from(message: String) -> Self {
        Self::retry(message)
    }
}

impl From<&str> for JobError {
    /// A retryable error.
    fn from(message: &str) -> Self {
        Self::retry(message)
    }
}

/// Classifies any error that implements `Display`, so `?` can be used on foreign results.
///
/// ```
/// use sandfire_guest::{JobError, ResultExt};
///
/// fn parse(raw: &str) -> Result<u32, JobError> {
///     // Bad data stays bad on every attempt: fail the run.
///     let n: u32 = raw.parse().fatal()?;
///     Ok(n)
/// }
/// assert!(!parse("x").unwrap_err().is_retryable());
/// ```
pub trait ResultExt<T> {
    /// Turns the error into [`JobError::retry`].
    fn retryable(self) -> Result<T, JobError>;
    /// Turns the error into [`JobError::fail`].
    fn fatal(self) -> Result<T, JobError>;
}

impl<T, E: fmt::Display> ResultExt<T> for Result<T, E> {
    fn retryable(self) -> Result<T, JobError> {
        self.map_err(JobError::retry)
    }

    fn fatal(self) -> Result<T, JobError> {
        self.map_err(JobError::fail)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl From<JobError> for WitJobError {
    fn from(e: JobError) -> Self {
        match e.0 {
            Kind::Retry { message, delay } => WitJobError::Retry(RetryRequest {
                message,
                delay_ms: delay.map(millis),
            }),
            Kind::Fail(message) => WitJobError::Fail(message),
            Kind::Snooze { delay, reason } => WitJobError::Snooze(SnoozeRequest {
                delay_ms: millis(delay),
                reason,
            }),
        }
    }
}

#[cfg(test)]
impl From<WitJobError> for JobError {
    fn from(e: WitJobError) -> Self {
        match e {
            WitJobError::Retry(r) => Self(Kind::Retry {
                message: r.message,
                delay: r.delay_ms.map(Duration::from_millis),
            }),
            WitJobError::Fail(m) => Self(Kind::Fail(m)),
            WitJobError::Snooze(s) => Self(Kind::Snooze {
                delay: Duration::from_millis(s.delay_ms),
                reason: s.reason,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_onto_the_wit_variant() {
        let wit = WitJobError::from(JobError::retry_after("slow down", Duration::from_secs(2)));
        assert!(matches!(
            wit,
            WitJobError::Retry(RetryRequest {
                delay_ms: Some(2000),
                ..
            })
        ));
        let wit = WitJobError::from(JobError::snooze(Duration::MAX, "later"));
        assert!(matches!(
            wit,
            WitJobError::Snooze(SnoozeRequest {
                delay_ms: u64::MAX,
                ..
            })
        ));
        assert!(
            matches!(WitJobError::from(JobError::fail("no")), WitJobError::Fail(m) if m == "no")
        );
    }

    #[test]
    fn question_mark_on_foreign_errors() {
        fn job() -> Result<(), JobError> {
            "x".parse::<u8>().map_err(JobError::retry)?;
            Ok(())
        }
        assert!(job().unwrap_err().is_retryable());
    }
}
