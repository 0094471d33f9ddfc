//! Fails with a retryable error until a given attempt, then succeeds: shows retries.
//!
//! Input `{"succeed_on_attempt": 3}` → attempts 1 and 2 ask for a retry, attempt 3 returns
//! `{"succeeded_on_attempt": 3}`.

use sandfire_guest::{Context, JobError, job, warn};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    succeed_on_attempt: u32,
}

#[derive(Serialize)]
struct Output {
    succeeded_on_attempt: u32,
}

#[job]
fn flaky(ctx: Context, input: Input) -> Result<Output, JobError> {
    let (attempt, wanted) = (ctx.attempt, input.succeed_on_attempt);
    if attempt < wanted {
        warn!(attempt = attempt, succeed_on_attempt = wanted; "failing on purpose");
        return Err(JobError::retry(format_args!(
            "attempt {attempt} of {wanted}: not yet"
        )));
    }
    Ok(Output {
        succeeded_on_attempt: attempt,
    })
}
