//! Turning how an attempt ended into an outcome, an error message and a retry decision.
//!
//! Classification is by type only: our own marker errors (returned by the epoch callback),
//! `wasmtime::Trap` codes, `I32Exit`, the memory limiter's record and the pool's
//! `PoolConcurrencyLimitError`. Message text (including captured stderr) is only ever
//! presented, never matched to decide an outcome.

use std::fmt;
use std::time::Duration;

use wasmtime::{PoolConcurrencyLimitError, Trap};
use wasmtime_wasi::I32Exit;

use super::host::JobError;
use super::journal::truncate;
use crate::model::Outcome;

/// Guest-supplied text kept in an attempt's `error` (it ends up in the database).
const MAX_ERROR_BYTES: usize = 8 * 1024;

/// Returned by the epoch callback when the attempt's deadline has passed.
#[derive(Debug)]
pub(crate) struct DeadlineExceeded;

impl fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the attempt's deadline passed")
    }
}

impl std::error::Error for DeadlineExceeded {}

/// Returned by the epoch callback when the run was cancelled.
#[derive(Debug)]
pub(crate) struct CancelRequested;

impl fmt::Display for CancelRequested {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the run was cancelled")
    }
}

impl std::error::Error for CancelRequested {}

/// How an attempt ended, before interpretation.
pub(crate) enum Ending {
    /// `run` returned.
    Returned(Result<Vec<u8>, JobError>),
    /// Instantiation failed (no guest code of the job's `run` executed).
    InstantiateFailed(wasmtime::Error),
    /// `run` trapped or a host call failed.
    Trapped(wasmtime::Error),
    /// The deadline passed while the guest was blocked in a host call (epochs do not fire
    /// there), so the call was dropped.
    TimedOut,
    /// The run was cancelled while the guest was blocked in a host call.
    Cancelled,
    /// Something on the runner's side failed before or around the guest.
    RunnerFailed(String),
}

/// What the sandbox knows besides the ending.
pub(crate) struct Facts<'a> {
    pub memory_limit_hit: bool,
    pub fuel: u64,
    pub memory_bytes: u64,
    pub timeout: Duration,
    pub stderr: &'a str,
    pub max_output_bytes: usize,
}

/// The interpretation of an ending: the report's fields except the measurements.
#[derive(Debug)]
pub(crate) struct Verdict {
    pub outcome: Outcome,
    pub output: Option<serde_json::Value>,
    pub error: Option<String>,
    pub retryable: bool,
    pub retry_delay: Option<Duration>,
    pub snooze: Option<(Duration, String)>,
    /// The runner, not the job, stopped the attempt (see `AttemptReport::runner_fault`).
    pub runner_fault: bool,
}

impl Verdict {
    fn new(outcome: Outcome, error: String, retryable: bool) -> Verdict {
        Verdict {
            outcome,
            output: None,
            error: Some(bounded(&error)),
            retryable,
            retry_delay: None,
            snooze: None,
            runner_fault: false,
        }
    }

    /// A failure that is the runner's, not the job's: `Error`, retryable (the next attempt
    /// may land on a healthier runner or a freer pool).
    pub fn runner_failure(reason: &str) -> Verdict {
        Verdict {
            runner_fault: true,
            ..Verdict::new(
                Outcome::Error,
                format!("runner could not instantiate the job: {reason}"),
                true,
            )
        }
    }
}

pub(crate) fn classify(ending: Ending, facts: &Facts<'_>) -> Verdict {
    match ending {
        Ending::Returned(Ok(output)) => returned_output(output, facts),
        Ending::Returned(Err(JobError::Retry(request))) => Verdict {
            retry_delay: request.delay_ms.map(Duration::from_millis),
            ..Verdict::new(Outcome::Error, request.message, true)
        },
        Ending::Returned(Err(JobError::Fail(message))) => {
            Verdict::new(Outcome::Error, message, false)
        }
        // Snoozing is not a failure, but there is no outcome for it: the report says `Error`
        // with `snooze` set, not retryable (a snooze does not use up an attempt), and the
        // worker checks `snooze` before anything else.
        Ending::Returned(Err(JobError::Snooze(request))) => {
            let reason = bounded(&request.reason);
            Verdict {
                snooze: Some((Duration::from_millis(request.delay_ms), reason.clone())),
                ..Verdict::new(Outcome::Error, format!("snoozed: {reason}"), false)
            }
        }
        Ending::TimedOut => timeout(facts),
        Ending::Cancelled => cancelled(),
        Ending::RunnerFailed(reason) => Verdict::runner_failure(&reason),
        // Only a full instance pool (recognised in `trapped`) is the runner's fault here: any
        // other failure while instantiating comes from the component itself (its start function
        // or initialisers trapped, asked for too much, ...), so it uses up an attempt like a
        // crash. Otherwise a guest could be retried for free forever.
        Ending::InstantiateFailed(error) => match trapped(&error, facts) {
            Some(verdict) => verdict,
            None => Verdict::new(
                Outcome::Panic,
                format!(
                    "the job failed while being instantiated (in its start function or \
                     initialisers): {}",
                    describe(&error)
                ),
                true,
            ),
        },
        Ending::Trapped(error) => match trapped(&error, facts) {
            Some(verdict) => verdict,
            // A host call failed in a way no trap code describes (e.g. the guest exhausted
            // its resource table): the guest's doing, reported like any other crash.
            None => Verdict::new(Outcome::Panic, describe(&error), true),
        },
    }
}

fn returned_output(output: Vec<u8>, facts: &Facts<'_>) -> Verdict {
    if output.len() > facts.max_output_bytes {
        return Verdict::new(
            Outcome::Error,
            format!(
                "the job's output is {} bytes, more than the limit of {} bytes: return less \
                 (store large results elsewhere and return a reference to them)",
                output.len(),
                facts.max_output_bytes
            ),
            false,
        );
    }
    match serde_json::from_slice(&output) {
        Ok(value) => Verdict {
            outcome: Outcome::Ok,
            output: Some(value),
            error: None,
            retryable: false,
            retry_delay: None,
            snooze: None,
            runner_fault: false,
        },
        Err(error) => Verdict::new(
            Outcome::Error,
            format!(
                "the job's output is not valid UTF-8 JSON ({error}): return JSON-encoded bytes \
                 (the SDK serialises the return value for you)"
            ),
            false,
        ),
    }
}

/// The verdict for errors we can recognise by type; `None` for anything else.
fn trapped(error: &wasmtime::Error, facts: &Facts<'_>) -> Option<Verdict> {
    if error.is::<CancelRequested>() {
        return Some(cancelled());
    }
    if error.is::<DeadlineExceeded>() {
        return Some(timeout(facts));
    }
    if error.is::<PoolConcurrencyLimitError>() {
        return Some(Verdict::runner_failure(&describe(error)));
    }
    let trap = error.downcast_ref::<Trap>().copied();
    if trap == Some(Trap::OutOfFuel) {
        return Some(Verdict::new(
            Outcome::OutOfFuel,
            format!(
                "the attempt used up its fuel budget of {} units: raise the run's `fuel` option \
                 or make the job do less work per run",
                facts.fuel
            ),
            true,
        ));
    }
    // Checked after fuel: a guest that survived a refused allocation and then looped is out of
    // fuel, not out of memory.
    if facts.memory_limit_hit {
        let mut message = format!(
            "the attempt tried to use more than its memory limit of {}: raise the run's \
             `memory_mb` option or make the job use less memory",
            mebibytes(facts.memory_bytes)
        );
        if let Some(line) = last_line(facts.stderr) {
            message.push_str(&format!(" (the job wrote: {line})"));
        }
        return Some(Verdict::new(Outcome::MemoryLimit, message, true));
    }
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return Some(Verdict::new(
            Outcome::Error,
            format!(
                "the job called exit({}) instead of returning from `run`: return an error \
                 (retry, fail or snooze) instead",
                exit.0
            ),
            false,
        ));
    }
    let trap = trap?;
    let message = match trap {
        // Our epoch callback never asks for a bare interrupt; treat one as the deadline.
        Trap::Interrupt => return Some(timeout(facts)),
        Trap::StackOverflow => format!("stack overflow (unbounded recursion?): {trap}"),
        // The Rust stack lives in linear memory, so unbounded recursion usually shows up as
        // an out-of-bounds access rather than `StackOverflow`.
        Trap::MemoryOutOfBounds => panic_message(facts.stderr).unwrap_or_else(|| {
            format!("{trap} (unbounded recursion overflowing the stack looks like this)")
        }),
        _ => panic_message(facts.stderr).unwrap_or_else(|| match last_line(facts.stderr) {
            Some(line) => format!("{trap} (the job wrote: {line})"),
            None => trap.to_string(),
        }),
    };
    Some(Verdict::new(Outcome::Panic, message, true))
}

fn timeout(facts: &Facts<'_>) -> Verdict {
    Verdict::new(
        Outcome::Timeout,
        format!(
            "the attempt ran past its timeout of {} ms: raise the run's `timeout_ms` option or \
             make the job finish sooner",
            facts.timeout.as_millis()
        ),
        true,
    )
}

fn cancelled() -> Verdict {
    Verdict::new(
        Outcome::Cancelled,
        "the run was cancelled while this attempt was running".to_owned(),
        false,
    )
}

/// The message of the last Rust panic in `stderr`, as "panicked at FILE:LINE:COL: MESSAGE".
pub(crate) fn panic_message(stderr: &str) -> Option<String> {
    let start = stderr.rfind("panicked at ")?;
    let mut lines = stderr[start..].lines();
    let location = lines.next()?.trim_end().trim_end_matches(':');
    let message: Vec<&str> = lines
        .take_while(|line| !line.starts_with("note: "))
        .map(str::trim_end)
        .collect();
    let message = message.join("\n");
    let message = message.trim();
    Some(if message.is_empty() {
        location.to_owned()
    } else {
        format!("{location}: {message}")
    })
}

/// The last line of `text` worth showing, bounded: not blank, and not the Rust runtime's
/// "note: run with `RUST_BACKTRACE=1`" hint that follows every abort.
fn last_line(text: &str) -> Option<String> {
    let line = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with("note: "))?;
    Some(bounded(line))
}

/// The error's chain without the wasm backtrace (that is for debugging, not for job authors).
fn describe(error: &wasmtime::Error) -> String {
    let backtrace = error
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(ToString::to_string);
    error
        .chain()
        .map(ToString::to_string)
        .filter(|cause| Some(cause) != backtrace.as_ref())
        .collect::<Vec<_>>()
        .join(": ")
}

fn bounded(text: &str) -> String {
    truncate(text, MAX_ERROR_BYTES).to_owned()
}

fn mebibytes(bytes: u64) -> String {
    if bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(stderr: &str) -> Facts<'_> {
        Facts {
            memory_limit_hit: false,
            fuel: 1000,
            memory_bytes: 16 << 20,
            timeout: Duration::from_millis(50),
            stderr,
            max_output_bytes: 16,
        }
    }

    #[test]
    fn reads_the_panic_message_from_stderr() {
        let stderr = "\nthread '<unnamed>' panicked at src/main.rs:5:5:\nboom\nnote: run with \
                      `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(
            panic_message(stderr).as_deref(),
            Some("panicked at src/main.rs:5:5: boom")
        );
        assert_eq!(panic_message("nothing here"), None);
    }

    #[test]
    fn job_errors_map_to_retry_decisions() {
        let retry = classify(
            Ending::Returned(Err(JobError::Retry(
                super::super::host::sandfire::job::types::RetryRequest {
                    message: "later".to_owned(),
                    delay_ms: Some(1500),
                },
            ))),
            &facts(""),
        );
        assert_eq!(retry.outcome, Outcome::Error);
        assert!(retry.retryable);
        assert_eq!(retry.retry_delay, Some(Duration::from_millis(1500)));

        let fail = classify(
            Ending::Returned(Err(JobError::Fail("no".to_owned()))),
            &facts(""),
        );
        assert!(!fail.retryable);
        assert_eq!(fail.error.as_deref(), Some("no"));
    }

    #[test]
    fn output_must_be_bounded_json() {
        let ok = classify(Ending::Returned(Ok(b"{\"a\":1}".to_vec())), &facts(""));
        assert_eq!(ok.outcome, Outcome::Ok);
        assert_eq!(ok.output, Some(serde_json::json!({"a": 1})));

        let bad = classify(Ending::Returned(Ok(b"{nope".to_vec())), &facts(""));
        assert_eq!(bad.outcome, Outcome::Error);
        assert!(!bad.retryable);

        let big = classify(Ending::Returned(Ok(vec![b' '; 17])), &facts(""));
        assert_eq!(big.outcome, Outcome::Error);
        assert!(big.error.unwrap().contains("limit of 16 bytes"));
    }

    #[test]
    fn classifies_by_type() {
        let fuel = classify(
            Ending::Trapped(wasmtime::Error::new(Trap::OutOfFuel)),
            &facts(""),
        );
        assert_eq!(fuel.outcome, Outcome::OutOfFuel);
        let deadline = classify(
            Ending::Trapped(wasmtime::Error::new(DeadlineExceeded).context("in wasm")),
            &facts(""),
        );
        assert_eq!(deadline.outcome, Outcome::Timeout);
        let cancel = classify(
            Ending::Trapped(wasmtime::Error::new(CancelRequested)),
            &facts(""),
        );
        assert_eq!(cancel.outcome, Outcome::Cancelled);
        assert!(!cancel.retryable);
        let mut memory =
            facts("memory allocation of 1048576 bytes failed\nnote: run with `RUST_BACKTRACE=1`\n");
        memory.memory_limit_hit = true;
        let hog = classify(
            Ending::Trapped(wasmtime::Error::new(Trap::UnreachableCodeReached)),
            &memory,
        );
        assert_eq!(hog.outcome, Outcome::MemoryLimit);
        assert!(hog.error.unwrap().contains("memory allocation of 1048576"));
        let odd = classify(
            Ending::InstantiateFailed(wasmtime::format_err!("something broke")),
            &facts(""),
        );
        assert_eq!(odd.outcome, Outcome::Panic);
        assert!(odd.retryable);
        assert!(
            !odd.runner_fault,
            "a failing start function is the guest's doing"
        );
    }
}
