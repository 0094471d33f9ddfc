//! Counts the primes below `n` with a sieve, reporting progress: shows progress, logging at
//! several levels, cancellation and input validation.
//!
//! Input `{"n": 200000}` (`n` defaults to 200000; no input at all is fine too) → output
//! `{"primes": 17984, "largest": 199999}`.

use sandfire_guest::{JobError, cancelled, debug, info, job, progress};
use serde::{Deserialize, Serialize};

/// Bounds the sieve's memory (one byte per number).
const MAX_N: u32 = 50_000_000;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Input {
    n: u32,
}

impl Default for Input {
    fn default() -> Self {
        Self { n: 200_000 }
    }
}

#[derive(Serialize)]
struct Output {
    primes: u32,
    /// `None` (JSON `null`) when there is no prime below `n`.
    largest: Option<u32>,
}

/// `Option<Input>`: a run without input (JSON `null`) uses the defaults.
#[job]
fn report(input: Option<Input>) -> Result<Output, JobError> {
    let n = input.unwrap_or_default().n;
    if n > MAX_N {
        // Retrying would not make the input smaller: fail the run now.
        return Err(JobError::fail(format_args!(
            "n must be at most {MAX_N}, got {n}"
        )));
    }
    info!(n = n; "counting the primes below {n}");

    let n = n as usize;
    let mut composite = vec![false; n];
    let (mut primes, mut largest) = (0, None);
    let step = (n / 10).max(1);
    for i in 2..n {
        if !composite[i] {
            primes += 1;
            largest = Some(i as u32);
            for multiple in (i.saturating_mul(i)..n).step_by(i) {
                composite[multiple] = true;
            }
        }
        if i.is_multiple_of(step) {
            if cancelled() {
                return Err(JobError::fail("cancelled"));
            }
            let percent = (i as u64 * 100 / n as u64) as u8;
            debug!(primes = primes; "sieved {i} of {n}");
            progress(percent, format!("{primes} primes so far"));
        }
    }
    progress(100, format!("{primes} primes"));
    info!(primes = primes; "done");
    Ok(Output { primes, largest })
}

#[cfg(test)]
mod tests {
    use super::*;

    // A job is a plain function: test it natively with `cargo test`.
    #[test]
    fn counts_the_primes_below_the_default_n() {
        let out = report(None).unwrap();
        assert_eq!((out.primes, out.largest), (17_984, Some(199_999)));
    }

    #[test]
    fn rejects_a_huge_n_without_retry() {
        let err = report(Some(Input { n: MAX_N + 1 })).err().unwrap();
        assert!(!err.is_retryable());
    }
}
