//! Logs `tick 1` … `tick N`, one line every `interval_ms`, with progress: a job to watch live
//! (the dashboard's log tail) and to cancel while it runs.
//!
//! Input `{"ticks": 10, "interval_ms": 300}` (both optional; no input at all is fine too) →
//! output `{"ticks": 10}`.

use std::time::Duration;

use sandfire_guest::{JobError, cancelled, info, job, progress};
use serde::{Deserialize, Serialize};

/// Bounds a run's length and log: an hour of ticks at the shortest interval is plenty.
const MAX_TICKS: u32 = 10_000;
const MAX_INTERVAL_MS: u64 = 60_000;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Input {
    ticks: u32,
    interval_ms: u64,
}

impl Default for Input {
    fn default() -> Self {
        Self {
            ticks: 10,
            interval_ms: 300,
        }
    }
}

#[derive(Serialize)]
struct Output {
    ticks: u32,
}

#[job]
fn ticker(input: Option<Input>) -> Result<Output, JobError> {
    let Input { ticks, interval_ms } = input.unwrap_or_default();
    if ticks > MAX_TICKS || interval_ms > MAX_INTERVAL_MS {
        return Err(JobError::fail(format_args!(
            "ticks must be at most {MAX_TICKS} and interval_ms at most {MAX_INTERVAL_MS}"
        )));
    }
    for i in 1..=ticks {
        if i > 1 {
            std::thread::sleep(Duration::from_millis(interval_ms));
        }
        if cancelled() {
            return Err(JobError::fail(format_args!(
                "cancelled after {} ticks",
                i - 1
            )));
        }
        info!("tick {i}");
        progress(
            (i * 100 / ticks.max(1)) as u8,
            format!("tick {i} of {ticks}"),
        );
    }
    Ok(Output { ticks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_as_asked() {
        let out = ticker(Some(Input {
            ticks: 3,
            interval_ms: 1,
        }))
        .unwrap();
        assert_eq!(out.ticks, 3);
    }

    #[test]
    fn refuses_endless_runs_without_retry() {
        let err = ticker(Some(Input {
            ticks: MAX_TICKS + 1,
            interval_ms: 1,
        }))
        .err()
        .unwrap();
        assert!(!err.is_retryable());
    }
}
