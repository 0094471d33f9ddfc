//! Snoozes until a given attempt, then succeeds: shows snooze, which waits without using up
//! one of the run's attempts.
//!
//! Input `{"until_attempt": 3, "delay_ms": 50}` → attempts 1 and 2 snooze for 50 ms, attempt 3
//! returns `{"woke_on_attempt": 3}`.

use std::time::Duration;

use sandfire_guest::{Context, JobError, info, job};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    until_attempt: u32,
    #[serde(default = "default_delay")]
    delay_ms: u64,
}

fn default_delay() -> u64 {
    1_000
}

#[derive(Serialize)]
struct Output {
    woke_on_attempt: u32,
}

#[job]
fn snooze(ctx: Context, input: Input) -> Result<Output, JobError> {
    if ctx.attempt < input.until_attempt {
        info!(attempt = ctx.attempt; "not ready yet; snoozing");
        return Err(JobError::snooze(
            Duration::from_millis(input.delay_ms),
            "waiting for the data to arrive",
        ));
    }
    Ok(Output {
        woke_on_attempt: ctx.attempt,
    })
}
